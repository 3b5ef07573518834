"""The write-behind buffer of feed updates: a 304's bookkeeping, kept in memory and written
for all feeds together, in one transaction, every :data:`FEED_FLUSH_EVERY` seconds.

Its policy: a write that fails keeps the values (under anything deferred since) for the next
one; a later write for the same feed carries them (:meth:`FeedBuffer.taking`); reads lay
them over the rows they return (:meth:`FeedBuffer.overlay`). A crash loses at most one
interval of bookkeeping: those feeds are polled again a little early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterator

from bot.store.db import Database, is_write_failure
from bot.store.rows import FeedRow, check_feed_columns

log = logging.getLogger(__name__)

# Seconds between writes of the deferred feed updates (a 304's bookkeeping). With 10,000 feeds
# at 400 polls/s, every 1 s wrote ~330 of the feeds table's pages (1.3 MB of WAL) for 400 rows;
# every 5 s writes ~700 pages for 2,000 rows: half the CPU per row, a quarter of the I/O.
# A crash loses at most that much bookkeeping: those feeds are polled a little early.
# (bot.store.FEED_FLUSH_EVERY, read when a Store is made, is the one the store uses.)
FEED_FLUSH_EVERY = 5.0


class FeedBuffer:
    """Deferred feed updates (feed id -> columns to write), and the timer that writes them."""

    def __init__(self, db: Database, every: float = FEED_FLUSH_EVERY) -> None:
        self.db = db
        self.every = every
        self._deferred: dict[int, dict[str, object]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    def defer(self, feed_id: int, values: dict[str, object]) -> None:
        """Keep ``values`` for the feed; they are written within :attr:`every` seconds."""
        check_feed_columns(values)
        self._deferred.setdefault(feed_id, {}).update(values)
        if self._timer is None and self._task is None:
            self._timer = asyncio.get_running_loop().call_later(self.every, self._start_flush)

    @contextlib.contextmanager
    def taking(self, feed_id: int) -> Iterator[dict[str, object]]:
        """The feed's deferred values, for a write that carries them. Should that write
        fail they are kept for the next one, under anything deferred since. (The worker's
        copy of the row already has them, and a 304 defers only what differs from it: lost
        here, they would never be written.)"""
        values = self._deferred.pop(feed_id, {})
        try:
            yield values
        except BaseException:
            self._keep(feed_id, values)
            raise

    def holds_any(self) -> bool:
        """Whether some deferred values are not written yet."""
        return bool(self._deferred)

    def overlay(self, feed: FeedRow) -> FeedRow:
        """``feed`` with the values still deferred for it (those a failed flush kept)."""
        for name, value in self._deferred.get(feed.id, {}).items():
            setattr(feed, name, bool(value) if name in ("gone", "baselined") else value)
        return feed

    async def flush(self) -> None:
        """Write the deferred feed updates now, in one transaction."""
        if not self._deferred:
            return
        pending, self._deferred = self._deferred, {}
        groups: dict[tuple[str, ...], list[tuple[object, ...]]] = {}
        for fid, values in pending.items():
            groups.setdefault(tuple(values), []).append((*values.values(), fid))

        def write(conn: sqlite3.Connection) -> None:
            for columns, rows in groups.items():
                assignments = ", ".join(f"{k} = ?" for k in columns)
                conn.executemany(f"UPDATE feeds SET {assignments} WHERE id = ?", rows)

        try:
            await self.db.transaction(write)
        except BaseException:
            for fid, values in pending.items():
                self._keep(fid, values)
            raise

    async def flush_before_reading(self) -> None:
        """Write the deferred feed updates, so that a read sees them; while the database
        cannot be written they stay deferred and :meth:`overlay` lays them over."""
        try:
            await self.flush()
        except sqlite3.Error as exc:
            if not is_write_failure(exc):
                raise

    async def close(self) -> None:
        """Stop the timer, let a flush under way finish, and write what is left."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    def _keep(self, feed_id: int, values: dict[str, object]) -> None:
        if values:
            self._deferred[feed_id] = {**values, **self._deferred.get(feed_id, {})}

    def _start_flush(self) -> None:
        self._timer = None
        self._task = asyncio.create_task(self._flush_in_background(), name="feed-flush")

    async def _flush_in_background(self) -> None:
        try:
            await self.flush()
        except Exception as exc:
            if not is_write_failure(exc):  # those are logged once a minute by Database.write
                log.exception("feed_state_flush_failed (kept; trying again in %gs)", self.every)
        finally:
            self._task = None
            if self._deferred and self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(
                    self.every, self._start_flush)
