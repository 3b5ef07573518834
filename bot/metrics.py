"""Prometheus metrics, one registry per running service (tests build their own).

Counters are incremented where things happen (the worker and the dispatcher); the gauges
that describe the database or the gate are refreshed by ``GET /metrics`` itself
(:func:`bot.web.make_app`), so a scrape always sees the current values.

=====================================  =======  ==========================================
name (as exposed)                      type     meaning
=====================================  =======  ==========================================
bot_feed_polls_total{outcome}          counter  polls: new, unchanged, not_modified, error, gone
bot_feed_errors_total{feed}            counter  failed polls, by feed URL
bot_articles_found_total               counter  new articles that became a pending post
bot_posts_total{outcome}               counter  attempts to post: sent, duplicate, retry,
                                                rate_limited, auth, credits, failed
bot_posts_pending                      gauge    posts waiting to be sent (pending + sending)
bot_rate_limit_gate_seconds            gauge    seconds until the rate-limit gate opens (0 = open)
bot_event_loop_lag_seconds             histo.   how late the event loop wakes up
bot_event_loop_lag_last_seconds        gauge    the last measured lag
bot_feeds{state}                       gauge    feeds by state (new, ok, failing, paused, gone,
                                                inactive), as /healthz and `status` count them
bot_last_successful_poll_timestamp_seconds gauge  when a feed was last read successfully
bot_destination_posts{destination,window} gauge posts that went out over 24h / 30d
bot_estimated_spend_usd{destination,window} gauge their estimated cost at X_COST_PER_POST
bot_destination_posts_attempted_total{destination,outcome} counter  bot_posts_total, by
                                                destination
bot_destination_posts_pending{destination} gauge posts waiting, by destination
bot_destination_gate_seconds{destination} gauge  seconds until that destination's gate opens
bot_info{version}                      gauge    always 1
=====================================  =======  ==========================================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from bot import __version__
from bot.models import FeedState

# Every counter would also be exposed as a `_created` series (when it was made): noise for a
# scrape, and twice the series. Prometheus needs none of it.
disable_created_metrics()



class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.polls = Counter("bot_feed_polls", "Feed polls by outcome "
                             "(new, unchanged, not_modified, error, gone)", ["outcome"], registry=r)
        self.feed_errors = Counter("bot_feed_errors", "Feed errors by feed", ["feed"], registry=r)
        self.articles = Counter("bot_articles_found", "New articles found", registry=r)
        self.posts = Counter("bot_posts", "Attempts to post by outcome", ["outcome"], registry=r)
        self.pending = Gauge("bot_posts_pending", "Posts waiting to be sent", registry=r)
        self.gate_seconds = Gauge("bot_rate_limit_gate_seconds",
                                  "Seconds until the rate-limit gate opens (0 = open)", registry=r)
        self.loop_lag = Histogram("bot_event_loop_lag_seconds", "Event-loop lag",
                                  buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
                                  registry=r)
        self.loop_lag_last = Gauge("bot_event_loop_lag_last_seconds",
                                   "Last measured event-loop lag", registry=r)
        self.feeds = Gauge("bot_feeds", "Feeds being polled, by state", ["state"], registry=r)
        self.last_poll = Gauge("bot_last_successful_poll_timestamp_seconds",
                               "Unix time of the last successful poll of any feed (0 = none yet)",
                               registry=r)
        self.destination_posts = Gauge(
            "bot_destination_posts", "Posts that went out, by destination, over a window",
            ["destination", "window"], registry=r)
        self.estimated_spend = Gauge(
            "bot_estimated_spend_usd", "What those posts cost, estimated (X_COST_PER_POST)",
            ["destination", "window"], registry=r)
        self.destination_outcomes = Counter(
            "bot_destination_posts_attempted", "Attempts to post by destination and outcome",
            ["destination", "outcome"], registry=r)
        self.destination_pending = Gauge(
            "bot_destination_posts_pending", "Posts waiting to be sent, by destination",
            ["destination"], registry=r)
        self.destination_gate_seconds = Gauge(
            "bot_destination_gate_seconds", "Seconds until a destination's gate opens (0 = open)",
            ["destination"], registry=r)
        self.info = Gauge("bot_info", "The bot's version", ["version"], registry=r)
        self.info.labels(__version__).set(1)
        for outcome in ("new", "unchanged", "not_modified", "error", "gone"):
            self.polls.labels(outcome)  # exposed as 0 from the start, so rate() works
        for outcome in ("sent", "duplicate", "retry", "rate_limited", "auth", "credits", "failed"):
            self.posts.labels(outcome)
        for state in FeedState:
            self.feeds.labels(state)
