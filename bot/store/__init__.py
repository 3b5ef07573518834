"""SQLite storage through aiosqlite, behind one facade: :class:`Store`.

The package's modules, one job each:

- ``db``: the connection: opening it safely (read-only file, not the bot's file), one trip
  per call to aiosqlite's thread, transactions, the write-failure tracking;
- ``migrations``: the schema, tracked by ``PRAGMA user_version``;
- ``rows``: the rows handed out and taken in, and the names of the feeds table;
- ``feeds``, ``entries``, ``posts``, ``meta``: one table each;
- ``buffer``: the write-behind buffer of feed updates (a 304's bookkeeping).

:class:`Store` composes them by delegation rather than inheriting from mixins: each part is
given only what it needs (posts and meta never see the buffer; only feeds and entries do),
so what depends on what is written in ``__init__``, and this class is the one list of the
store's public methods, each with the signature it always had.

``MIGRATIONS_DIR`` and ``FEED_FLUSH_EVERY`` are read from this package (when migrating, and
when a store is made), so tests set them here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import aiosqlite

from bot.errors import StorageError
from bot.models import Entry
from bot.store import migrations
from bot.store.buffer import FEED_FLUSH_EVERY, FeedBuffer
from bot.store.db import (
    APPLICATION_ID,
    BOT_TABLES,
    UNWRITABLE_LOG_EVERY,
    Database,
    connect,
    is_write_failure,
    open_problem,
)
from bot.store.entries import Entries, NewPostIds
from bot.store.feeds import Feeds
from bot.store.meta import Meta
from bot.store.posts import Posts
from bot.store.rows import (
    DRY_RUN_NOTE,
    FEED_COLUMNS,
    FEED_FLAGS,
    FEED_SETTINGS,
    POST_STATES,
    DuePass,
    FeedRow,
    NewPost,
    Outgoing,
    Post,
)

__all__ = [
    "APPLICATION_ID", "BOT_TABLES", "DRY_RUN_NOTE", "FEED_COLUMNS", "FEED_FLAGS",
    "FEED_FLUSH_EVERY", "FEED_SETTINGS", "MIGRATIONS_DIR", "POST_STATES",
    "UNWRITABLE_LOG_EVERY", "DuePass", "FeedRow", "NewPost", "Outgoing", "Post", "Store",
    "is_write_failure",
]

MIGRATIONS_DIR: Path | None = None  # None: the installed package's (bot.schema); tests set one


class Store:
    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self.db = db  # the aiosqlite connection (the benchmarks trace it)
        self.path = path
        self._database = Database(db, path)
        self._buffer = FeedBuffer(self._database, FEED_FLUSH_EVERY)
        self._feeds = Feeds(self._database, self._buffer)
        self._entries = Entries(self._database, self._buffer)
        self._posts = Posts(self._database)
        self._meta = Meta(self._database)

    @property
    def unwritable(self) -> str | None:
        """While writes fail (a full disk, an I/O error): the last error, for /healthz."""
        return self._database.unwritable

    # -- opening, closing and migrating ------------------------------------------------

    @classmethod
    async def open(cls, path: str, *, migrate: bool = True) -> Store:
        """Open the bot's database, creating and migrating it when ``migrate``.

        Nothing is written to a file that is not the bot's: one with tables but without the
        bot's mark (``PRAGMA application_id``), or with a newer schema, is refused untouched.
        Only then is the journal switched to WAL (after the migrations, so a failed one
        leaves the file as it was)."""
        conn = await connect(path, writable=migrate)
        store = cls(conn, path)
        try:
            await migrations.register_functions(store._database)
            await store._database.configure()
            await store.check_ownership()
            if migrate:
                await store.migrate()
            else:
                await store.check_version()
            await store._database.use_wal()
        except sqlite3.Error as exc:
            await conn.close()
            raise StorageError(open_problem(path, exc)) from exc
        except BaseException:
            await conn.close()
            raise
        return store

    async def check_ownership(self) -> None:
        await self._database.check_ownership()

    async def close(self) -> None:
        """Write the deferred feed updates, then close the connection."""
        await self._buffer.close()
        await self._database.close()

    async def user_version(self) -> int:
        return await migrations.user_version(self._database)

    async def check_version(self) -> int:
        return await migrations.check_version(self._database, MIGRATIONS_DIR)

    async def migrate(self) -> int:
        return await migrations.migrate(self._database, MIGRATIONS_DIR)

    async def data_version(self) -> int:
        return await self._database.data_version()

    async def _fetchone(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Row | None:
        """One row of any query (bench/history.py times queries through it)."""
        return await self._database.fetchone(sql, params)

    # -- feeds ---------------------------------------------------------------------------

    async def sync_env_feeds(self, urls: Iterable[str], now: float) -> tuple[list[str], list[str]]:
        return await self._feeds.sync_env_feeds(urls, now)

    async def add_feed(self, url: str, now: float, **settings: object) -> FeedRow:
        return await self._feeds.add_feed(url, now, **settings)

    async def import_feeds(self, urls: Sequence[str], now: float) -> list[str]:
        return await self._feeds.import_feeds(urls, now)

    async def set_feed_flag(self, url: str, **flags: int) -> bool:
        return await self._feeds.set_feed_flag(url, **flags)

    async def feed_by_url(self, url: str) -> FeedRow | None:
        return await self._feeds.feed_by_url(url)

    async def feeds(self, *, pollable_only: bool = False) -> list[FeedRow]:
        return await self._feeds.feeds(pollable_only=pollable_only)

    async def feed_counts(self) -> dict[int, tuple[int, int]]:
        return await self._feeds.feed_counts()

    async def feed_summary(self) -> tuple[dict[str, int], float | None] | None:
        return await self._feeds.feed_summary()

    async def failing_feeds(self) -> list[FeedRow]:
        return await self._feeds.failing_feeds()

    async def update_feed(self, feed_id: int, **values: object) -> None:
        await self._feeds.update_feed(feed_id, **values)

    def defer_feed_update(self, feed_id: int, **values: object) -> None:
        """:meth:`update_feed`, written within :data:`FEED_FLUSH_EVERY` seconds together with
        the other deferred ones, in one transaction. For a 304's bookkeeping: at 10,000 feeds
        a write per poll is most of the CPU a poll costs. A crash loses at most that much
        bookkeeping: those feeds are polled again a little early. Reads of the feeds table
        through this store, and any later write for the same feed, see the deferred values."""
        self._buffer.defer(feed_id, values)

    async def flush_feed_updates(self) -> None:
        """Write the deferred feed updates now, in one transaction."""
        await self._buffer.flush()

    # -- entries -------------------------------------------------------------------------

    async def seen(self, feed_id: int, entries: Sequence[Entry]
                   ) -> tuple[set[str], dict[str, frozenset[str] | None]]:
        return await self._entries.seen(feed_id, entries)

    async def record_poll(self, feed_id: int, new: Sequence[NewPost], now: float,
                          **feed_values: object) -> NewPostIds:
        return await self._entries.record_poll(feed_id, new, now, **feed_values)

    # -- posts ---------------------------------------------------------------------------

    async def requeue_interrupted(self, destination: str = "x") -> int:
        return await self._posts.requeue_interrupted(destination)

    async def due_posts(self, now: float, limit: int, exclude: Iterable[int] = (),
                        destination: str = "x") -> list[Post]:
        return await self._posts.due_posts(now, limit, exclude, destination)

    async def claim_due(self, now: float, limit: int, exclude: Iterable[int] = (),
                        destination: str = "x") -> DuePass:
        return await self._posts.claim_due(now, limit, exclude, destination)

    async def next_due_at(self, destination: str = "x") -> float | None:
        return await self._posts.next_due_at(destination)

    async def claim(self, post_id: int) -> bool:
        return await self._posts.claim(post_id)

    async def mark_sent(self, post: Post, tweet_id: str | None, now: float,
                        note: str | None = None) -> bool:
        return await self._posts.mark_sent(post, tweet_id, now, note)

    async def mark_pending(self, post: Post, next_attempt_at: float, error: str | None,
                           *, refund_attempt: bool = False) -> bool:
        return await self._posts.mark_pending(post, next_attempt_at, error,
                                              refund_attempt=refund_attempt)

    async def mark_failed(self, post: Post, error: str) -> bool:
        return await self._posts.mark_failed(post, error)

    async def due_now(self, destination: str, now: float) -> int:
        return await self._posts.due_now(destination, now)

    async def retry_failed(self, post_ids: Iterable[int] | None) -> int:
        return await self._posts.retry_failed(post_ids)

    async def post(self, post_id: int) -> Post | None:
        return await self._posts.post(post_id)

    async def posts(self, state: str | None = None, limit: int = 1000,
                    destination: str | None = None) -> list[Post]:
        return await self._posts.posts(state, limit, destination)

    async def pending_count(self, destination: str | None = None) -> int:
        return await self._posts.pending_count(destination)

    async def post_counts(self, destination: str | None = None) -> dict[str, int]:
        return await self._posts.post_counts(destination)

    async def destination_counts(self) -> dict[str, dict[str, int]]:
        return await self._posts.destination_counts()

    async def dry_run_posts(self) -> int:
        return await self._posts.dry_run_posts()

    async def sent_since(self, since: float, destination: str = "x") -> list[float]:
        return await self._posts.sent_since(since, destination)

    async def sent_counts(self, *since: float) -> dict[str, list[int]]:
        return await self._posts.sent_counts(*since)

    # -- meta ----------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        return await self._meta.get_meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        await self._meta.set_meta(key, value)
