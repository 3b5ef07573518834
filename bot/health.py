"""One picture of the service's health, behind ``/healthz``, ``/metrics`` and ``status``.

:func:`take` reads the database once (feeds and posts by state, the last successful poll,
the posting gate) and adds what only the running service knows (posts in flight, a gate it
holds in memory, a database that has stopped taking writes). The three views render the same
:class:`Snapshot`, so they cannot disagree: a paused feed is ``paused`` in each of them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.gate import DAY, DOWN_AFTER, MONTH
from bot.models import FeedState, PostState
from bot.networks import network_of
from bot.store import FeedRow, Store
from bot.times import iso

FEED_LIST_MAX = 200  # /healthz lists each feed while there are at most this many


@dataclass(frozen=True, slots=True)
class Snapshot:
    feeds: dict[str, int]  # every feed state, 0 included
    posts: dict[str, int]  # every post state, 0 included (all destinations)
    rows: list[FeedRow]  # every feed when there are at most FEED_LIST_MAX, else the failing
    last_successful_poll: float | None
    gate: dict[str, Any]  # the first destination's: open, reason, seconds_left, detail, …
    posting_broken: bool  # posting to some destination cannot work until someone acts
    in_flight: int | None = None  # None: not known here (the command line)
    database_error: str | None = None
    database_id: str | None = None
    x_cost_per_post: float = 0.0  # USD (X_COST_PER_POST)
    # each destination: network, posts (by state), posts_24h, posts_30d, gate,
    # posting_broken, in_flight, consecutive_failures and last_error (answers in a row that
    # were no answer: a timeout, a refused connection, a 5xx; a running service's only), and
    # for X, the estimated spend
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def posts_on_x(self) -> tuple[int, int]:
        """The posts that went out on X in the last 24 hours and the last 30 days."""
        view = self.destinations.get("x", {})
        return view.get("posts_24h", 0), view.get("posts_30d", 0)

    def on_x(self) -> dict[str, Any]:
        """Posts on X and what they cost, estimated at X_COST_PER_POST."""
        return _spend(*self.posts_on_x, self.x_cost_per_post)

    @property
    def status(self) -> str:
        """``database_unwritable`` and ``posting_broken`` (a destination's credentials or
        credits: someone must act) answer 503; ``degraded`` (a network that has not answered
        DOWN_AFTER attempts in a row: down, nothing to fix here) and ``ok`` answer 200."""
        if self.database_error:
            return "database_unwritable"
        if self.posting_broken:
            return "posting_broken"
        return "degraded" if self.degraded() else "ok"

    def degraded(self) -> list[str]:
        """The destinations whose network has not answered the last attempts."""
        return [name for name, view in self.destinations.items()
                if view.get("consecutive_failures", 0) >= DOWN_AFTER]

    @property
    def http_status(self) -> int:
        return 200 if self.status in ("ok", "degraded") else 503

    @property
    def total(self) -> int:
        return sum(self.feeds.values())

    @property
    def pending(self) -> int:
        """Posts owed: waiting, or with X right now."""
        return self.posts[PostState.PENDING] + self.posts[PostState.SENDING]

    def failing(self) -> list[FeedRow]:
        return [f for f in self.rows if f.state in (FeedState.FAILING, FeedState.GONE)]


async def take(store: Store, gate: dict[str, Any] | None = None, *,
               posting_broken: bool = False, in_flight: int | None = None,
               database_id: str | None = None, now: float | None = None,
               x_cost_per_post: float = 0.0,
               destinations: Mapping[str, Mapping[str, Any]] | None = None) -> Snapshot:
    """The picture now. ``destinations``: each destination's posting state
    (``gate``, ``posting_broken``, ``in_flight``) as its dispatcher (or, without a service,
    the database) has it; without it, ``gate``, ``posting_broken`` and ``in_flight`` are X's.
    A destination that has posts in the database but is not configured is shown too."""
    if destinations is None:
        destinations = {"x": {"gate": gate or {}, "in_flight": in_flight,
                              "posting_broken": posting_broken}}
    feeds = dict.fromkeys(FeedState, 0)
    summary = await store.feed_summary()  # counted in SQL: 10,000 feeds are not read
    if summary is not None and sum(summary[0].values()) > FEED_LIST_MAX:
        counts, last = summary
        feeds.update({FeedState(state): n for state, n in counts.items()})
        rows = await store.failing_feeds()
    else:  # few feeds (every one is listed), or deferred updates the disk did not take
        rows = await store.feeds()
        for row in rows:
            feeds[FeedState(row.state)] += 1
        last = max((f.last_success_at or 0.0 for f in rows), default=0.0) or None
    by_destination = await store.destination_counts()
    posts = dict.fromkeys(PostState, 0)
    for counts in by_destination.values():
        for state, n in counts.items():
            posts[PostState(state)] += n
    now = time.time() if now is None else now
    sent = await store.sent_counts(now - DAY, now - MONTH)
    views: dict[str, dict[str, Any]] = {}
    for name in [*destinations, *sorted(set(by_destination) - set(destinations))]:
        known = destinations.get(name)
        day, month = sent.get(name, [0, 0])
        network = network_of(name)
        view: dict[str, Any] = {
            "network": network, "configured": known is not None,
            "posts": {str(k): v for k, v in by_destination.get(
                name, dict.fromkeys(PostState, 0)).items()},
            "posts_24h": day, "posts_30d": month,
        }
        if known is not None:
            view.update(gate=known.get("gate", {}), posting_broken=bool(
                known.get("posting_broken")), in_flight=known.get("in_flight"))
            if "consecutive_failures" in known:  # a running service's: the network is down?
                view.update(consecutive_failures=known["consecutive_failures"],
                            last_error=known.get("last_error"))
        if network == "x":
            view.update(_spend(day, month, x_cost_per_post))
        views[name] = view
    first = next(iter(destinations.values()), {})
    return Snapshot(feeds={str(k): v for k, v in feeds.items()},
                    posts={str(k): v for k, v in posts.items()}, rows=rows,
                    last_successful_poll=last, gate=dict(first.get("gate") or {}),
                    posting_broken=any(bool(d.get("posting_broken"))
                                       for d in destinations.values()),
                    in_flight=_total_in_flight(destinations),
                    database_error=store.unwritable, database_id=database_id,
                    x_cost_per_post=x_cost_per_post,
                    destinations=views)


def _total_in_flight(destinations: Mapping[str, Mapping[str, Any]]) -> int | None:
    counts = [d.get("in_flight") for d in destinations.values()]
    known = [n for n in counts if isinstance(n, int)]
    return sum(known) if known else None


def _spend(day: int, month: int, cost: float) -> dict[str, Any]:
    return {"posts_24h": day, "posts_30d": month, "cost_per_post_usd": cost,
            "estimated_spend_24h_usd": round(day * cost, 2),
            "estimated_spend_30d_usd": round(month * cost, 2)}


def healthz(snapshot: Snapshot, *, dry_run: bool) -> dict[str, Any]:
    """The body of ``GET /healthz``."""
    body: dict[str, Any] = {
        "status": snapshot.status,
        **({"degraded": snapshot.degraded()} if snapshot.degraded() else {}),
        **({"posting_broken": broken} if (broken := [
            name for name, view in snapshot.destinations.items()
            if view.get("posting_broken")]) else {}),
        "database_id": snapshot.database_id,
        "dry_run": dry_run,
        "feeds": {"total": snapshot.total,
                  **{state: n for state, n in snapshot.feeds.items() if n}},
        "pending_posts": snapshot.pending,
        "posts": snapshot.posts,
        "last_successful_poll": iso(snapshot.last_successful_poll),
        "posting": {"in_flight": snapshot.in_flight, "gate": snapshot.gate,
                    "posting_broken": snapshot.posting_broken},
        "x": snapshot.on_x(),
        "destinations": snapshot.destinations,
    }
    if snapshot.total <= FEED_LIST_MAX:
        body["feed_states"] = [
            {"url": f.url, "fetch_url": f.location, "state": f.state,
             "last_status": f.last_status, "consecutive_failures": f.consecutive_failures,
             "last_error": f.last_error, "last_polled_at": iso(f.last_polled_at),
             "next_poll_at": iso(f.next_poll_at)}
            for f in snapshot.rows
        ]
    if snapshot.database_error:
        body["database_error"] = snapshot.database_error
    return body
