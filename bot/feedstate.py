"""A feed's next poll state, decided without I/O: one pure function per outcome of a poll.

A poll fetches, parses, decides which entries are new, and then needs to know what to write
about the feed itself: its status, error, failures, validators, title and next poll time.
:func:`after_success` (a 200 or a 304), :func:`after_error` (including 410 Gone),
:func:`after_move` (a permanent redirect) and :func:`after_crash` (a poll that could not even
write down its failure) each return a :class:`FeedUpdate`. The store writes its
:meth:`~FeedUpdate.changes` in the poll's single transaction, and the worker's cached row
takes the same values (:meth:`~FeedUpdate.apply`), so the two never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from bot.store.rows import FeedRow


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """A feed's poll state after one poll (every column a poll may change)."""

    title: str
    etag: str | None
    last_modified: str | None
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    last_polled_at: float | None
    last_success_at: float | None
    next_poll_at: float
    gone: bool
    baselined: bool
    fetch_url: str | None

    @classmethod
    def of(cls, feed: FeedRow, **changed: object) -> FeedUpdate:
        """The feed's state as it is, with ``changed`` columns replaced."""
        if not changed.keys() <= _COLUMNS:
            raise ValueError(f"not a feed's poll state: {sorted(changed.keys() - _COLUMNS)}")
        values = {name: getattr(feed, name) for name in _NAMES}
        values.update(changed)
        return cls(**values)  # type: ignore[arg-type]

    def changes(self, feed: FeedRow) -> dict[str, object]:
        """The columns whose value differs from ``feed``'s: what the store has to write
        (a 304 usually changes only the three times)."""
        return {name: value for name in _NAMES
                if (value := getattr(self, name)) != getattr(feed, name)}

    def apply(self, feed: FeedRow, changes: dict[str, object] | None = None) -> None:
        """Make the cached row ``feed`` say what was written (``changes``, when the caller
        has them from :meth:`changes`: only those columns are set)."""
        for name, value in (changes or {n: getattr(self, n) for n in _NAMES}).items():
            setattr(feed, name, value)


# polls run thousands of times a second at 10,000 feeds: the names once, not fields() each time
_NAMES = tuple(f.name for f in fields(FeedUpdate))
_COLUMNS = frozenset(_NAMES)


@dataclass(frozen=True, slots=True)
class Schedule:
    """How often a feed is polled, and how far a failing one backs off."""

    interval: float  # POLL_INTERVAL
    max_backoff: float  # MAX_FEED_BACKOFF

    def backoff(self, failures: int) -> float:
        """Seconds to the next poll after ``failures`` failures in a row: the interval,
        doubling, at most ``max_backoff``."""
        return min(self.max_backoff, self.interval * 2 ** min(64, max(0, failures - 1)))


def after_success(feed: FeedRow, schedule: Schedule, *, status: int, started: float,
                  now: float, etag: str | None, last_modified: str | None,
                  title: str | None = None) -> FeedUpdate:
    """A poll that read the feed: a 200 (``title`` given: the feed's title, the first poll's
    baseline done) or a 304 Not Modified (``title`` None)."""
    # every column named (not FeedUpdate.of): most polls are 304s, thousands a second
    return FeedUpdate(
        title=feed.title if title is None else (title or feed.title), etag=etag,
        last_modified=last_modified, last_status=status, last_error=None,
        consecutive_failures=0, last_polled_at=started, last_success_at=now,
        next_poll_at=started + schedule.interval, gone=feed.gone,
        baselined=feed.baselined if title is None else True, fetch_url=feed.fetch_url)


def after_error(feed: FeedRow, schedule: Schedule, *, status: int | None, error: str,
                started: float, retry_after: float | None = None,
                gone: bool = False) -> FeedUpdate:
    """A poll that failed (HTTP error, timeout, not a feed, a bug): one failure more, and a
    next poll after the backoff, or after the server's ``Retry-After`` when that is longer
    (never beyond ``max_backoff``). ``gone``: a 410, the feed is no longer polled."""
    failures = feed.consecutive_failures + 1
    delay = schedule.backoff(failures)
    if retry_after is not None:
        delay = max(delay, min(retry_after, schedule.max_backoff))
    return FeedUpdate.of(feed, last_status=status, last_error=error[:500],
                         consecutive_failures=failures, last_polled_at=started,
                         next_poll_at=started + delay, gone=gone)


def after_move(feed: FeedRow, new_url: str) -> FeedUpdate:
    """A permanent redirect: fetch from ``new_url`` from now on (the feed keeps its URL)."""
    return FeedUpdate.of(feed, fetch_url=new_url)


def after_crash(feed: FeedRow, schedule: Schedule, *, error: str, now: float) -> FeedUpdate:
    """A poll that could not even record its failure (the disk is full): failing and backing
    off all the same, in memory, until a write works again."""
    failures = feed.consecutive_failures + 1
    return FeedUpdate.of(feed, consecutive_failures=failures, last_error=error[:500],
                         next_poll_at=now + schedule.backoff(failures))
