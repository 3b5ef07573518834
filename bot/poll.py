"""One poll of one feed: fetch -> parse -> decide and plan (pure) -> one store call -> wake the
dispatcher.

:meth:`Poller.poll` reads the feed through its source (:mod:`bot.sources`), keeps what is
new (:mod:`bot.decide`), composes each new entry's post on its own (:mod:`bot.compose`: one
entry that cannot become a post gets a failed post with the reason and holds up nothing),
plans the feed's next state (:mod:`bot.feedstate`) and writes all of it in ONE transaction
(:meth:`bot.store.Store.record_poll`). A 304 defers its bookkeeping to the store's
write-behind buffer. A failure of any kind, a bug included, is a failure of this feed:
``failing``, with the error, and the next poll backs off. Polling never waits for X.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.compose import Composed, compose_for_rules
from bot.config import Settings
from bot.decide import Filters, decide
from bot.delivery import Card, card_to_json
from bot.errors import FeedError, FeedGoneError
from bot.feedstate import Schedule, after_error, after_move, after_success
from bot.invocation import command
from bot.metrics import Metrics
from bot.models import Entry, ParsedFeed, storable, valid_text
from bot.networks import LengthRule, X
from bot.sources import BlogDatabaseSource, HttpSource, Reading, source_for
from bot.store import FeedRow, NewPost, Outgoing, Store, is_write_failure
from bot.text import clip
from bot.times import span

log = logging.getLogger("bot.worker")  # the log lines' logger, as before the split


@dataclass(frozen=True, slots=True)
class Outlet:
    """A destination as the poller sees it: its name and how long its posts may be."""

    name: str
    rule: LengthRule = X

    @property
    def wants_card(self) -> bool:  # Bluesky shows a link card built from the entry
        return self.rule.network == "bluesky"


X_ONLY = {"x": Outlet("x")}


@dataclass(slots=True)
class PollReport:
    url: str
    status: int | None = None
    new: int = 0
    error: str | None = None


class Poller:
    """Polls feeds for the worker: everything one poll does, nothing of the schedule."""

    def __init__(self, settings: Settings, store: Store, http: HttpSource,
                 blog_database: BlogDatabaseSource, *, metrics: Metrics,
                 clock: Callable[[], float], wake: Callable[[], None],
                 executor: Executor | None = None,
                 outlets: Mapping[str, Outlet] = X_ONLY) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self.blog_database = blog_database
        self.metrics = metrics
        self.clock = clock
        self.wake = wake  # the dispatcher's: new posts are waiting
        self.executor = executor
        self.outlets = outlets  # the worker's: a Mastodon instance's limit may come later
        self._told: set[tuple[int, str]] = set()  # (feed, destination) said to be unknown
        self.schedule = Schedule(settings.poll_interval, settings.max_backoff)
        self._not_modified_polls = metrics.polls.labels("not_modified")  # most polls: once

    async def poll(self, feed: FeedRow) -> PollReport:
        """Read the feed, record what is new and the feed's next state, wake the dispatcher."""
        started = self.clock()
        report = PollReport(feed.url)
        source = source_for(feed.url, self.http, self.blog_database)
        try:
            reading = await source.read(feed.location, etag=feed.etag,
                                        last_modified=feed.last_modified)
            report.status = reading.status
            if reading.final_url and reading.final_url != feed.location:
                await self._moved(feed, reading.final_url)
            if reading.parsed is None:  # 304 Not Modified
                self._not_modified(feed, reading, started)
            else:
                report.new = await self._record(feed, reading, started)
        except FeedGoneError as exc:
            await self._failed(feed, exc, started, report, gone=True)
        except FeedError as exc:
            await self._failed(feed, exc, started, report)
        except Exception as exc:  # a bug or the disk: still a failure of this feed, never "ok"
            if not is_write_failure(exc):  # (the store logs those, once a minute)
                log.exception("poll_crashed url=%s", feed.url)
            await self._failed(feed, FeedError(f"internal error: {type(exc).__name__}: {exc}"),
                               started, report)
        return report

    def _not_modified(self, feed: FeedRow, reading: Reading, started: float) -> None:
        update = after_success(feed, self.schedule, status=304, started=started,
                               now=self.clock(), etag=reading.etag,
                               last_modified=reading.last_modified)
        # usually only the three times change: write only what did, within 5 s, together
        # with the other feeds' (at 10,000 feeds a write per 304 would cost more than the poll)
        changes = update.changes(feed)
        self.store.defer_feed_update(feed.id, **changes)
        update.apply(feed, changes)
        self._not_modified_polls.inc()
        if self.settings.dry_run:  # a dry run says so at INFO: someone watches the terminal
            log.info("feed_polled url=%s status=304 new=0%s", feed.url, self._next_in(feed))
        else:
            log.debug("feed_polled url=%s status=304 new=0", feed.url)

    async def _record(self, feed: FeedRow, reading: Reading, started: float) -> int:
        """A 200: the new entries, their posts and the feed's next state, in ONE write."""
        assert reading.parsed is not None
        s = self.settings
        now_dt = datetime.fromtimestamp(self.clock(), UTC)
        baselining = not feed.baselined  # read before the update below changes the row
        # valid Unicode only, from here on (a JSON feed can hold lone surrogates)
        parsed = reading.parsed
        entries = [storable(e) for e in parsed.entries]
        parsed = ParsedFeed(valid_text(parsed.title), parsed.link and valid_text(parsed.link),
                            entries)
        seen_keys, link_posts = await self.store.seen(feed.id, entries)
        targets = self._targets(feed)
        # a link is old news when every destination of this feed has it (or it was recorded
        # as seen); one that some of them lack is posted to those only
        names = {o.name for o in targets}
        seen_links = {link for link, has in link_posts.items() if has is None or names <= has}
        try:
            filters = Filters.compile(feed.include_re, feed.exclude_re)
        except re.error as exc:
            log.error("feed_filter_invalid url=%s error=%s (filters ignored)", feed.url, exc)
            filters = Filters()
        backfill = s.backfill if feed.backfill is None else feed.backfill
        decision = decide(entries, seen_keys=seen_keys, seen_links=seen_links,
                          first_poll=baselining, backfill=backfill, now=now_dt,
                          filters=filters)
        items = [NewPost(e, None) for e in decision.seen_only]
        items += await self._compose(feed, parsed, decision.to_post, targets, link_posts)
        update = after_success(feed, self.schedule, status=200, started=started,
                               now=self.clock(), etag=reading.etag,
                               last_modified=reading.last_modified, title=parsed.title)
        post_ids = await self.store.record_poll(feed.id, items, self.clock(),
                                                **update.changes(feed))
        update.apply(feed)
        articles = post_ids.articles  # each has a post per destination
        if post_ids:
            self.wake()
            self.metrics.articles.inc(articles)
        self.metrics.polls.labels("new" if post_ids else "unchanged").inc()
        if baselining:
            log.info("feed_baselined url=%s entries=%d tweeting=%d%s", feed.url,
                     len(parsed.entries), articles,
                     "" if post_ids else " (older articles are not tweeted; BACKFILL=N tweets "
                     "the newest N on a feed's first poll)")
        else:
            unpostable = sum(1 for item in items
                             if any(out.error is not None for out in item.posts()))
            log.info("feed_polled url=%s status=200 entries=%d new=%d filtered=%d%s%s",
                     feed.url, len(parsed.entries), articles, decision.filtered,
                     f" unpostable={unpostable}" if unpostable else "", self._next_in(feed))
        return articles

    def _targets(self, feed: FeedRow) -> list[Outlet]:
        """The destinations this feed's articles go to: those it names (``feeds add --to``)
        that are configured here, else every one configured."""
        names = feed.destination_names
        if names is None:
            return list(self.outlets.values())
        for name in names:
            if name not in self.outlets and (feed.id, name) not in self._told:
                self._told.add((feed.id, name))
                log.warning("feed_destination_unknown url=%s destination=%s: not configured "
                            "here, so this feed's articles are not posted there (configured: "
                            "%s)", feed.url, name, ", ".join(self.outlets) or "none")
        return [self.outlets[name] for name in names if name in self.outlets]

    async def _compose(self, feed: FeedRow, parsed: ParsedFeed, entries: list[Entry],
                       targets: list[Outlet],
                       link_posts: Mapping[str, frozenset[str] | None]) -> list[NewPost]:
        """The posts owed for ``entries``, one per destination, each composed under its own
        network's length rule. An entry that cannot become a post for a destination (its
        link is unusable, say) gets a failed post there with the reason; nothing else is
        held up."""
        s = self.settings
        if not targets:
            return [NewPost(entry) for entry in entries]  # seen; posted nowhere
        rules = list(dict.fromkeys(o.rule for o in targets))
        readable = [e for e in entries if e.error is None]
        by_rule: dict[LengthRule, list[Composed]] = {rule: [] for rule in rules}
        if readable:  # a long title can take many measurements: keep it off the event loop
            composed = await asyncio.get_running_loop().run_in_executor(
                self.executor, functools.partial(
                    compose_for_rules, rules, feed.template or s.tweet_template, readable,
                    parsed.title, parsed.link,
                    " ".join(x for x in (s.hashtags, feed.hashtags or "") if x),
                    keep_mentions=(feed.mentions or s.mentions) == "keep"))
            by_rule = dict(zip(rules, composed, strict=True))
        index = {id(e): i for i, e in enumerate(readable)}
        items = []
        for entry in entries:
            i = index.get(id(entry))
            outgoing = []
            has = link_posts.get(entry.link or "") or frozenset()  # posted there already
            for outlet in targets:
                if outlet.name in has:
                    continue
                result = by_rule[outlet.rule][i] if i is not None else None
                if result is not None and result.text is not None:
                    card = (card_to_json(result.link, _card(entry)) if outlet.wants_card
                            and result.link else None)
                    outgoing.append(Outgoing(outlet.name, result.text, card=card))
                    continue
                reason = entry.error or (result.error if result else None) or "cannot be posted"
                outgoing.append(Outgoing(outlet.name, None, error=reason))
                self.metrics.posts.labels("failed").inc()
                log.warning("entry_unpostable url=%s entry=%r title=%r reason=%s%s", feed.url,
                            entry.id[:200], entry.title[:100], reason,
                            "" if outlet.name == "x" else f" destination={outlet.name}")
            items.append(NewPost(entry, outgoing=tuple(outgoing)))
        return items

    async def _failed(self, feed: FeedRow, exc: FeedError, started: float, report: PollReport,
                      *, gone: bool = False) -> None:
        status = exc.status if exc.status is not None else report.status
        report.status = status
        report.error = str(exc)
        update = after_error(feed, self.schedule, status=status, error=str(exc),
                             started=started, retry_after=exc.retry_after, gone=gone)
        await self.store.update_feed(feed.id, **update.changes(feed))
        update.apply(feed)
        self.metrics.polls.labels("gone" if gone else "error").inc()
        self.metrics.feed_errors.labels(feed.url).inc()
        if gone:
            log.warning("feed_gone url=%s: the server says 410 Gone; no longer polled "
                        "(`%s feeds resume URL` to try again)", feed.url, command())
        else:
            log.warning("feed_failed url=%s failures=%d retry_in=%.0fs error=%r", feed.url,
                        update.consecutive_failures, update.next_poll_at - started, str(exc))

    async def _moved(self, feed: FeedRow, new_url: str) -> None:
        """A permanent redirect: fetch from the new URL from now on. The feed keeps its
        configured URL as its name, so FEED_URLS still matches it after a restart."""
        update = after_move(feed, new_url)
        await self.store.update_feed(feed.id, **update.changes(feed))
        update.apply(feed)
        log.warning("feed_moved url=%s to=%s (permanent redirect remembered)", feed.url, new_url)

    def _next_in(self, feed: FeedRow) -> str:
        """`` next_poll_in=5m`` for a dry run's log (someone is watching), else nothing."""
        if not self.settings.dry_run:
            return ""
        return f" next_poll_in={span(feed.next_poll_at - self.clock())}"


def _card(entry: Entry) -> Card:
    """The link card of an entry (Bluesky): its title, the start of its summary, its image."""
    return Card(clip(entry.title, 300), clip(entry.summary, 300), getattr(entry, "image", None))
