"""One picture of the service's health, behind ``/healthz``, ``/metrics`` and ``status``.

:func:`take` reads the database once (feeds and posts by state, the last successful poll,
the posting gate) and adds what only the running service knows (posts in flight, a gate it
holds in memory, a database that has stopped taking writes). The three views render the same
:class:`Snapshot`, so they cannot disagree: a paused feed is ``paused`` in each of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bot.gate import DAY, MONTH
from bot.models import FeedState, PostState
from bot.store import FeedRow, Store
from bot.times import iso

FEED_LIST_MAX = 200  # /healthz lists each feed while there are at most this many


@dataclass(frozen=True, slots=True)
class Snapshot:
    feeds: dict[str, int]  # every feed state, 0 included
    posts: dict[str, int]  # every post state, 0 included
    rows: list[FeedRow]  # every feed when there are at most FEED_LIST_MAX, else the failing
    last_successful_poll: float | None
    gate: dict[str, Any]  # open, reason, seconds_left, detail, probing, until
    posting_broken: bool
    in_flight: int | None = None  # None: not known here (the command line)
    database_error: str | None = None
    database_id: str | None = None
    posts_on_x: tuple[int, int] = (0, 0)  # went out in the last 24 hours, the last 30 days
    x_cost_per_post: float = 0.0  # USD (X_COST_PER_POST)
    extra: dict[str, Any] = field(default_factory=dict)

    def on_x(self) -> dict[str, Any]:
        """Posts on X and what they cost, estimated at X_COST_PER_POST."""
        day, month = self.posts_on_x
        cost = self.x_cost_per_post
        return {"posts_24h": day, "posts_30d": month, "cost_per_post_usd": cost,
                "estimated_spend_24h_usd": round(day * cost, 2),
                "estimated_spend_30d_usd": round(month * cost, 2)}

    @property
    def status(self) -> str:
        if self.database_error:
            return "database_unwritable"
        return "posting_broken" if self.posting_broken else "ok"

    @property
    def http_status(self) -> int:
        return 200 if self.status == "ok" else 503

    @property
    def total(self) -> int:
        return sum(self.feeds.values())

    @property
    def pending(self) -> int:
        """Posts owed: waiting, or with X right now."""
        return self.posts[PostState.PENDING] + self.posts[PostState.SENDING]

    def failing(self) -> list[FeedRow]:
        return [f for f in self.rows if f.state in (FeedState.FAILING, FeedState.GONE)]


async def take(store: Store, gate: dict[str, Any], *, posting_broken: bool,
               in_flight: int | None = None, database_id: str | None = None,
               now: float | None = None, x_cost_per_post: float = 0.0) -> Snapshot:
    """The picture now. ``gate`` is the posting gate as the dispatcher (or, without a
    service, the database) has it: see :func:`gate_view`."""
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
    posts = dict.fromkeys(PostState, 0)
    posts.update({PostState(k): v for k, v in (await store.post_counts()).items()})
    now = time.time() if now is None else now
    day, month = await store.sent_counts(now - DAY, now - MONTH)
    return Snapshot(feeds={str(k): v for k, v in feeds.items()},
                    posts={str(k): v for k, v in posts.items()}, rows=rows,
                    last_successful_poll=last, gate=gate, posting_broken=posting_broken,
                    in_flight=in_flight, database_error=store.unwritable,
                    database_id=database_id, posts_on_x=(day, month),
                    x_cost_per_post=x_cost_per_post)


def healthz(snapshot: Snapshot, *, dry_run: bool) -> dict[str, Any]:
    """The body of ``GET /healthz``."""
    body: dict[str, Any] = {
        "status": snapshot.status,
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
