"""SQLite storage through aiosqlite: migrations, feeds, entries, posts.

One connection in autocommit mode; every operation takes ``self._lock`` so that the
statements of one transaction are never interleaved with another task's. Each operation is
one function run on aiosqlite's database thread (:meth:`Store._run`); a transaction
(``BEGIN IMMEDIATE`` … ``COMMIT``) runs whole inside one such function. The schema lives
in ``migrations/NNNN_name.sql`` and is tracked by ``PRAGMA user_version``; a database newer
than the code is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiosqlite

from bot.errors import SchemaTooNewError, StorageError
from bot.models import Entry
from bot.schema import migration_scripts

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR: Path | None = None  # None: the installed package's (bot.schema); tests set one
# SQLite's default limit on host parameters is 32766 (3.32+); stay far below it.
_CHUNK = 500

# SQLite's primary result codes for "cannot write now": READONLY, IOERR, FULL, CANTOPEN
_CANNOT_WRITE = frozenset({8, 10, 13, 14})
UNWRITABLE_LOG_EVERY = 60.0
# The bot's mark in the database header (PRAGMA application_id): "FTwt". With it, and only
# with it, may a file that already holds tables be migrated.
APPLICATION_ID = 0x46547774
BOT_TABLES = frozenset({"feeds", "entries", "posts", "meta"})
DRY_RUN_NOTE = "dry run: not posted"  # a dry run's "sent" posts carry it as their note
POST_STATES = ("pending", "sending", "sent", "failed")
# Seconds between writes of the deferred feed updates (a 304's bookkeeping). With 10,000 feeds
# at 400 polls/s, every 1 s wrote ~330 of the feeds table's pages (1.3 MB of WAL) for 400 rows;
# every 5 s writes ~700 pages for 2,000 rows: half the CPU per row, a quarter of the I/O.
# A crash loses at most that much bookkeeping: those feeds are polled a little early.
FEED_FLUSH_EVERY = 5.0
FEED_COLUMNS = frozenset({
    "title", "etag", "last_modified", "last_status", "last_error", "consecutive_failures",
    "last_polled_at", "last_success_at", "next_poll_at", "gone", "fetch_url", "baselined",
})


def _check_feed_columns(values: dict[str, object]) -> None:
    unknown = set(values) - FEED_COLUMNS
    if unknown:
        raise ValueError(f"unknown feed columns: {sorted(unknown)}")


@dataclass(slots=True)  # the worker keeps one per feed and updates it after each poll
class FeedRow:
    id: int
    url: str
    title: str
    origin: str
    active: bool
    paused: bool
    gone: bool
    baselined: bool
    etag: str | None
    last_modified: str | None
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    last_polled_at: float | None
    last_success_at: float | None
    next_poll_at: float
    template: str | None
    hashtags: str | None
    include_re: str | None
    exclude_re: str | None
    backfill: int | None
    fetch_url: str | None = None
    mentions: str | None = None  # "keep" or "neutralise"; None: MENTIONS from the environment

    @property
    def location(self) -> str:
        """Where to fetch it: the URL a permanent redirect led to, else its own."""
        return self.fetch_url or self.url

    @property
    def state(self) -> str:
        if self.gone:
            return "gone"
        if self.paused:
            return "paused"
        if not self.active:
            return "inactive"
        if self.consecutive_failures:
            return "failing"
        return "ok" if self.last_success_at else "new"


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    entry_id: int
    text: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    tweet_id: str | None
    created_at: float
    sent_at: float | None
    feed_url: str = ""
    link: str | None = None


@dataclass(frozen=True, slots=True)
class DuePass:
    """What one dispatcher pass learns in one trip to the database (:meth:`Store.claim_due`)."""

    claimed: list[Post]  # as they were before the claim (attempts not yet counted)
    pending: int  # posts still pending after it
    next_due_at: float | None  # when the earliest of those is due


@dataclass(frozen=True, slots=True)
class NewPost:
    """An entry to record together with the text of the post it is owed.

    ``text`` None records the entry as seen and posts nothing; ``error`` (with no text)
    records it with a ``failed`` post that says why it could not become one."""

    entry: Entry
    text: str | None
    error: str | None = None


class Store:
    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self.db = db
        self.path = path
        self._lock = asyncio.Lock()
        # feed id -> columns to write: the bookkeeping of 304s, written together (defer_...)
        self._deferred: dict[int, dict[str, object]] = {}
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        # set while writes fail (a full disk, an I/O error): the last error, for /healthz
        self.unwritable: str | None = None
        self._unwritable_since = self._unwritable_logged = 0.0
        self._failed_writes = 0

    # -- opening and migrating ---------------------------------------------------------

    @classmethod
    async def open(cls, path: str, *, migrate: bool = True) -> Store:
        """Open the bot's database, creating and migrating it when ``migrate``.

        Nothing is written to a file that is not the bot's: one with tables but without the
        bot's mark (``PRAGMA application_id``), or with a newer schema, is refused untouched.
        Only then is the journal switched to WAL (after the migrations, so a failed one
        leaves the file as it was)."""
        if migrate and (problem := _read_only_problem(path)):
            # SQLite would open it read-only without a word, and fail at the first write
            raise StorageError(problem)
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(_open_problem(path, exc)) from exc
        db.row_factory = sqlite3.Row
        store = cls(db, path)
        try:
            # migrations call it (0003 normalises the links earlier versions stored)
            await db.create_function("normalise_link", 1, _normalise_link, deterministic=True)
            await db.execute("PRAGMA busy_timeout = 10000")
            await db.execute("PRAGMA foreign_keys = ON")
            await store.check_ownership()
            if migrate:
                await store.migrate()
            else:
                await store.check_version()
            await db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL is durable against a killed process (not against power loss).
            await db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            await db.close()
            raise StorageError(_open_problem(path, exc)) from exc
        except BaseException:
            await db.close()
            raise
        return store

    async def check_ownership(self) -> None:
        """Refuse a database that is not the bot's: tables, but not the bot's mark.

        The bot's databases carry :data:`APPLICATION_ID`; those written before it had the
        mark are recognised by their tables and schema version, and get the mark when
        migrated. An empty file is the bot's to take."""
        mark = (await self._fetchone("PRAGMA application_id"))[0]  # type: ignore[index]
        if mark == APPLICATION_ID:
            return
        tables = {r[0] for r in await self._fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if mark == 0 and (not tables or (BOT_TABLES <= tables and await self.user_version())):
            return  # new, or the bot's from before the mark
        what = (f"carries application_id {mark:#x}, another program's mark" if mark else
                f"holds tables the bot did not make ({', '.join(sorted(tables)[:5])})")
        raise StorageError(
            f"DATABASE_PATH={self.path!r} is not a feed-tweeter database: it {what}. It was "
            "left unchanged; point DATABASE_PATH at a new file or at the bot's own database")

    async def close(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._flush_task is not None:
            await asyncio.gather(self._flush_task, return_exceptions=True)
        await self.flush_feed_updates()
        async with self._lock:
            await self.db.close()

    async def user_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def check_version(self) -> int:
        try:
            version = await self.user_version()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path!r} is not a usable SQLite database: {exc}") from exc
        latest = len(migration_scripts(MIGRATIONS_DIR))
        if version > latest:
            raise SchemaTooNewError(
                f"the database {self.path!r} has schema version {version}, but this version "
                f"of the bot knows only up to {latest}: it was written by a newer bot. "
                "Upgrade the bot, or point DATABASE_PATH at another file."
            )
        return version

    async def migrate(self) -> int:
        """Apply every migration newer than the database, each in its own transaction,
        which also marks the file as the bot's (``PRAGMA application_id``)."""
        async with self._lock:
            version = await self.check_version()
            for number, name, script in migration_scripts(MIGRATIONS_DIR):
                if number <= version:
                    continue
                try:
                    await self.db.executescript(
                        f"BEGIN IMMEDIATE;\n{script}\n;PRAGMA user_version = {number};\n"
                        f"PRAGMA application_id = {APPLICATION_ID};\nCOMMIT;"
                    )
                except sqlite3.Error as exc:
                    if self.db.in_transaction:
                        await self.db.execute("ROLLBACK")
                    raise StorageError(f"migration {name} failed: {exc}") from exc
                log.info("migration_applied name=%s version=%d", name, number)
            return await self.user_version()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on aiosqlite's database thread, in ONE trip there and back,
        however many statements it runs (aiosqlite's own calls take a trip each: execute,
        fetch and close a cursor are three; each trip wakes that thread and then the event
        loop). ``Connection._execute`` is how aiosqlite runs every one of its calls."""
        async with self._lock:
            return await self.db._execute(fn, self.db._conn)  # type: ignore[no-any-return]

    async def _run_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`_run` inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error)."""
        return await self._write(functools.partial(_in_transaction, fn))

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`_run` for a write, keeping :attr:`unwritable` up to date: a full disk, an
        I/O error or a read-only file fails every write until it is mended. The log says
        so when it starts, once a minute while it lasts, and when writing works again."""
        try:
            result = await self._run(fn)
        except sqlite3.Error as exc:
            if is_write_failure(exc):
                self._write_failed(exc)
            raise
        if self.unwritable is not None:
            log.warning("database_writable_again path=%s after=%.0fs failed_writes=%d",
                        self.path, time.monotonic() - self._unwritable_since,
                        self._failed_writes)
            self.unwritable = None
        return result

    def _write_failed(self, exc: sqlite3.Error) -> None:
        now = time.monotonic()
        self._failed_writes = 1 if self.unwritable is None else self._failed_writes + 1
        if self.unwritable is None:
            self._unwritable_since = now
        if self.unwritable is None or now - self._unwritable_logged >= UNWRITABLE_LOG_EVERY:
            self._unwritable_logged = now
            log.error("database_unwritable path=%s error=%r failed_writes=%d (nothing is lost: "
                      "what could not be written is tried again; this is logged once a minute "
                      "while it lasts)", self.path, str(exc), self._failed_writes)
        self.unwritable = str(exc)

    async def _fetchall(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return await self._run(lambda conn: conn.execute(sql, params).fetchall())

    async def _fetchone(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Row | None:
        return await self._run(lambda conn: conn.execute(sql, params).fetchone())

    async def _execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return await self._write(lambda conn: conn.execute(sql, params).rowcount)

    # -- feeds -----------------------------------------------------------------------------

    async def sync_env_feeds(self, urls: Iterable[str], now: float) -> tuple[list[str], list[str]]:
        """Make the 'env' feeds match FEED_URLS. Returns (added, deactivated) URLs."""
        wanted = list(dict.fromkeys(urls))

        def write(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
            existing = {r["url"]: r
                        for r in conn.execute("SELECT url, origin, active FROM feeds")}
            added = [u for u in wanted if u not in existing]
            conn.executemany(
                "INSERT INTO feeds (url, origin, created_at) VALUES (?, 'env', ?)",
                [(u, now) for u in added],
            )
            conn.executemany(  # a URL listed in FEED_URLS is polled, whoever added it
                "UPDATE feeds SET active = 1, origin = 'env' WHERE url = ? "
                "AND (active = 0 OR origin = 'cli')",
                [(u,) for u in wanted if u in existing],
            )
            dropped = [u for u, r in existing.items()
                       if r["origin"] == "env" and r["active"] and u not in wanted]
            conn.executemany("UPDATE feeds SET active = 0 WHERE url = ?",
                             [(u,) for u in dropped])
            return added, dropped

        return await self._run_transaction(write)

    async def add_feed(self, url: str, now: float, **settings: object) -> FeedRow:
        columns = {k: v for k, v in settings.items()
                   if k in ("template", "hashtags", "include_re", "exclude_re", "backfill",
                            "mentions")}

        def write(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT id FROM feeds WHERE url = ?", (url,)).fetchone() is None:
                conn.execute("INSERT INTO feeds (url, origin, created_at) VALUES (?, 'cli', ?)",
                             (url, now))
            else:
                conn.execute("UPDATE feeds SET active = 1 WHERE url = ?", (url,))
            for name, value in columns.items():
                conn.execute(f"UPDATE feeds SET {name} = ? WHERE url = ?", (value, url))

        await self._run_transaction(write)
        feed = await self.feed_by_url(url)
        assert feed is not None
        return feed

    async def import_feeds(self, urls: Sequence[str], now: float) -> list[str]:
        """Subscribe to every URL not subscribed yet, in one transaction (``feeds import``);
        a removed one is polled again. Returns the URLs that were new."""
        def write(conn: sqlite3.Connection) -> list[str]:
            known: set[str] = set()
            for i in range(0, len(urls), _CHUNK):
                chunk = list(urls[i:i + _CHUNK])
                known.update(r[0] for r in conn.execute(
                    f"SELECT url FROM feeds WHERE url IN ({','.join('?' * len(chunk))})", chunk))
            new = [u for u in dict.fromkeys(urls) if u not in known]
            conn.executemany("INSERT INTO feeds (url, origin, created_at) VALUES (?, 'cli', ?)",
                             [(u, now) for u in new])
            conn.executemany("UPDATE feeds SET active = 1 WHERE url = ?",
                             [(u,) for u in known])
            return new

        return await self._run_transaction(write)

    async def set_feed_flag(self, url: str, **flags: int) -> bool:
        assignments = ", ".join(f"{k} = ?" for k in flags if k in ("active", "paused", "gone"))
        changed = await self._execute(f"UPDATE feeds SET {assignments} WHERE url = ?",
                                      (*flags.values(), url))
        return changed > 0

    async def feed_by_url(self, url: str) -> FeedRow | None:
        await self._flush_before_reading()
        row = await self._fetchone("SELECT * FROM feeds WHERE url = ?", (url,))
        return self._with_deferred(_feed(row)) if row else None

    async def _flush_before_reading(self) -> None:
        """Write the deferred feed updates, so that a read sees them; while the database
        cannot be written they stay deferred and :meth:`_with_deferred` lays them over."""
        try:
            await self.flush_feed_updates()
        except sqlite3.Error as exc:
            if not is_write_failure(exc):
                raise

    def _with_deferred(self, feed: FeedRow) -> FeedRow:
        for name, value in self._deferred.get(feed.id, {}).items():
            setattr(feed, name, bool(value) if name in ("gone", "baselined") else value)
        return feed

    async def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: changes when another connection (the CLI, say)
        commits, never for this connection's own writes."""
        row = await self._fetchone("PRAGMA data_version")
        return int(row[0]) if row else 0

    async def feeds(self, *, pollable_only: bool = False) -> list[FeedRow]:
        await self._flush_before_reading()
        where = "WHERE active = 1 AND paused = 0 AND gone = 0" if pollable_only else ""
        return [self._with_deferred(_feed(r))
                for r in await self._fetchall(f"SELECT * FROM feeds {where} ORDER BY id")]

    async def feed_counts(self) -> dict[int, tuple[int, int]]:
        """feed id -> (articles seen, posts sent)."""
        rows = await self._fetchall(
            "SELECT e.feed_id, COUNT(*) AS seen, "
            "SUM(CASE WHEN p.state = 'sent' THEN 1 ELSE 0 END) AS sent "
            "FROM entries e LEFT JOIN posts p ON p.entry_id = e.id GROUP BY e.feed_id"
        )
        return {r["feed_id"]: (r["seen"], r["sent"] or 0) for r in rows}

    async def update_feed(self, feed_id: int, **values: object) -> None:
        _check_feed_columns(values)
        with self._taking_deferred(feed_id) as deferred:
            values = {**deferred, **values}  # never reordered
            assignments = ", ".join(f"{k} = ?" for k in values)
            await self._execute(f"UPDATE feeds SET {assignments} WHERE id = ?",
                                (*values.values(), feed_id))

    @contextlib.contextmanager
    def _taking_deferred(self, feed_id: int) -> Iterator[dict[str, object]]:
        """The feed's deferred values, for a write that carries them. Should that write
        fail they are kept for the next one, under anything deferred since. (The worker's
        copy of the row already has them, and a 304 defers only what differs from it: lost
        here, they would never be written.)"""
        values = self._deferred.pop(feed_id, {})
        try:
            yield values
        except BaseException:
            self._keep_deferred(feed_id, values)
            raise

    def _keep_deferred(self, feed_id: int, values: dict[str, object]) -> None:
        if values:
            self._deferred[feed_id] = {**values, **self._deferred.get(feed_id, {})}

    def defer_feed_update(self, feed_id: int, **values: object) -> None:
        """:meth:`update_feed`, written within :data:`FEED_FLUSH_EVERY` seconds together with
        the other deferred ones, in one transaction. For a 304's bookkeeping: at 10,000 feeds
        a write per poll is most of the CPU a poll costs. A crash loses at most that much
        bookkeeping: those feeds are polled again a little early. Reads of the feeds table
        through this store, and any later write for the same feed, see the deferred values."""
        _check_feed_columns(values)
        self._deferred.setdefault(feed_id, {}).update(values)
        if self._flush_timer is None and self._flush_task is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                FEED_FLUSH_EVERY, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_timer = None
        self._flush_task = asyncio.create_task(self._flush_in_background(), name="feed-flush")

    async def _flush_in_background(self) -> None:
        try:
            await self.flush_feed_updates()
        except Exception as exc:
            if not is_write_failure(exc):  # those are logged once a minute by _write
                log.exception("feed_state_flush_failed (kept; trying again in %gs)",
                              FEED_FLUSH_EVERY)
        finally:
            self._flush_task = None
            if self._deferred and self._flush_timer is None:
                self._flush_timer = asyncio.get_running_loop().call_later(
                    FEED_FLUSH_EVERY, self._start_flush)

    async def flush_feed_updates(self) -> None:
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
            await self._run_transaction(write)
        except BaseException:
            for fid, values in pending.items():
                self._keep_deferred(fid, values)
            raise

    # -- entries -----------------------------------------------------------------------------

    async def seen(self, feed_id: int, entries: Sequence[Entry]) -> tuple[set[str], set[str]]:
        """Which of these entries' ids this feed has seen, and which links any feed has seen."""
        keys = list({e.id for e in entries})
        links = list({e.link for e in entries if e.link})

        def read(conn: sqlite3.Connection) -> tuple[set[str], set[str]]:
            seen_keys: set[str] = set()
            seen_links: set[str] = set()
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i:i + _CHUNK]
                sql = (f"SELECT entry_key FROM entries WHERE feed_id = ? AND entry_key IN "
                       f"({','.join('?' * len(chunk))})")
                seen_keys.update(r[0] for r in conn.execute(sql, (feed_id, *chunk)))
            for i in range(0, len(links), _CHUNK):
                chunk = links[i:i + _CHUNK]
                sql = f"SELECT link FROM entries WHERE link IN ({','.join('?' * len(chunk))})"
                seen_links.update(r[0] for r in conn.execute(sql, chunk))
            return seen_keys, seen_links

        return await self._run(read)

    async def record_poll(self, feed_id: int, new: Sequence[NewPost], now: float,
                          **feed_values: object) -> list[int]:
        """In ONE transaction: the new entries, a pending post for each that has text (a
        failed one for each that has an error), and the feed's new state (validators,
        title, schedule). Returns the new pending posts' ids.

        An entry to be tweeted whose link another entry already has (another feed polled
        meanwhile, say the same blog's JSON Feed) is recorded without a post: the link check
        runs inside the transaction, so two concurrent polls cannot both tweet it.

        Each entry is written inside a savepoint of its own: one that SQLite refuses is
        left out (and logged), and the others and the feed's state are still written."""
        insert = ("INSERT OR IGNORE INTO entries "
                  "(feed_id, entry_key, link, title, published_at, first_seen_at) "
                  "VALUES (?, ?, ?, ?, ?, ?)")

        def row(e: Entry) -> tuple[object, ...]:
            published = e.published.timestamp() if e.published else None
            return (feed_id, e.id, e.link, e.title[:500], published, now)

        def write_one(conn: sqlite3.Connection, item: NewPost) -> int | None:
            if item.text is None and item.error is None:
                conn.execute(insert, row(item.entry))
                return None
            if item.error is None and item.entry.link and conn.execute(
                    "SELECT 1 FROM entries WHERE link = ? LIMIT 1",
                    (item.entry.link,)).fetchone() is not None:
                conn.execute(insert, row(item.entry))  # seen, never tweeted twice
                return None
            cur = conn.execute(insert, row(item.entry))
            if cur.rowcount != 1 or not cur.lastrowid:
                return None
            if item.error is not None:
                conn.execute("INSERT INTO posts (entry_id, text, state, last_error, created_at) "
                             "VALUES (?, '', 'failed', ?, ?)",
                             (cur.lastrowid, item.error[:1000], now))
                return None
            return conn.execute("INSERT INTO posts (entry_id, text, created_at) VALUES (?, ?, ?)",
                                (cur.lastrowid, item.text, now)).lastrowid

        def write(conn: sqlite3.Connection) -> list[int]:
            post_ids: list[int] = []
            seen_only = [row(i.entry) for i in new if i.text is None and i.error is None]
            try:
                with _savepoint(conn):
                    conn.executemany(insert, seen_only)
                rest = [i for i in new if i.text is not None or i.error is not None]
            except (sqlite3.Error, ValueError):  # one bad row: find it, keep the others
                rest = list(new)
            for item in rest:
                try:
                    with _savepoint(conn):
                        post_id = write_one(conn, item)
                except (sqlite3.Error, ValueError) as exc:
                    if isinstance(exc, sqlite3.OperationalError) and not _is_row_error(exc):
                        raise  # the disk, not the row: the whole poll fails and is retried
                    log.warning("entry_unstorable feed_id=%d entry=%r error=%s",
                                feed_id, item.entry.id[:200], exc)
                    continue
                if post_id:
                    post_ids.append(post_id)
            if feed_values:
                assignments = ", ".join(f"{k} = ?" for k in feed_values)
                conn.execute(f"UPDATE feeds SET {assignments} WHERE id = ?",
                             (*feed_values.values(), feed_id))
            return post_ids

        _check_feed_columns(feed_values)
        with self._taking_deferred(feed_id) as deferred:
            feed_values = {**deferred, **feed_values}  # never reordered; write() reads it
            return await self._run_transaction(write)

    # -- posts -------------------------------------------------------------------------------

    async def requeue_interrupted(self) -> int:
        """At start-up: a post left 'sending' by a crash goes back to 'pending'."""
        return await self._execute(
            "UPDATE posts SET state = 'pending', next_attempt_at = 0 WHERE state = 'sending'"
        )

    async def due_posts(self, now: float, limit: int, exclude: Iterable[int] = ()) -> list[Post]:
        sql, params = _due_query(now, limit, exclude)
        return [_post(r) for r in await self._fetchall(sql, params)]

    async def claim_due(self, now: float, limit: int, exclude: Iterable[int] = ()) -> DuePass:
        """In ONE transaction: claim up to ``limit`` due posts, oldest first (pending ->
        sending, an attempt counted), then count those left pending and find when the next
        is due. One trip where :meth:`due_posts`, :meth:`claim` for each,
        :meth:`pending_count` and :meth:`next_due_at` took four or more."""
        sql, params = _due_query(now, limit, exclude)

        def write(conn: sqlite3.Connection) -> DuePass:
            claimed = []
            for row in conn.execute(sql, params).fetchall():
                if conn.execute(_CLAIM, (row["id"],)).rowcount == 1:
                    claimed.append(_post(row))
            pending, next_due = conn.execute(
                "SELECT COUNT(*), MIN(next_attempt_at) FROM posts WHERE state = 'pending'"
            ).fetchone()
            return DuePass(claimed, int(pending), next_due)

        return await self._run_transaction(write)

    async def next_due_at(self) -> float | None:
        row = await self._fetchone(
            "SELECT MIN(next_attempt_at) FROM posts WHERE state = 'pending'"
        )
        return row[0] if row and row[0] is not None else None

    async def claim(self, post_id: int) -> bool:
        """pending -> sending, committed before the call to X. False if someone else has it."""
        return await self._execute(_CLAIM, (post_id,)) == 1

    # A post's outcome is written only while the post is still ``sending`` with the attempt
    # that ``post`` (as claimed) started: a stale writer (another process, an answer that came
    # after a requeue) can never erase a tweet id or bring a sent post back. False: not written.

    async def mark_sent(self, post: Post, tweet_id: str | None, now: float,
                        note: str | None = None) -> bool:
        return await self._execute(
            "UPDATE posts SET state = 'sent', tweet_id = ?, sent_at = ?, last_error = ? "
            f"WHERE {_THIS_ATTEMPT}", (tweet_id, now, note, post.id, post.attempts + 1)) == 1

    async def mark_pending(self, post: Post, next_attempt_at: float, error: str | None,
                           *, refund_attempt: bool = False) -> bool:
        return await self._execute(
            "UPDATE posts SET state = 'pending', next_attempt_at = ?, last_error = ?, "
            f"attempts = attempts - ? WHERE {_THIS_ATTEMPT}",
            (next_attempt_at, error, 1 if refund_attempt else 0, post.id, post.attempts + 1),
        ) == 1

    async def mark_failed(self, post: Post, error: str) -> bool:
        return await self._execute(
            f"UPDATE posts SET state = 'failed', last_error = ? WHERE {_THIS_ATTEMPT}",
            (error, post.id, post.attempts + 1)) == 1

    async def retry_failed(self, post_ids: Iterable[int] | None) -> int:
        """failed -> pending again (all failed posts when ``post_ids`` is None)."""
        if post_ids is None:
            return await self._execute(
                "UPDATE posts SET state = 'pending', next_attempt_at = 0, attempts = 0, "
                "created_at = strftime('%s','now') WHERE state = 'failed'"
            )
        changed = 0
        for pid in post_ids:
            changed += await self._execute(
                "UPDATE posts SET state = 'pending', next_attempt_at = 0, attempts = 0, "
                "created_at = strftime('%s','now') WHERE id = ? AND state = 'failed'", (pid,)
            )
        return changed

    async def post(self, post_id: int) -> Post | None:
        row = await self._fetchone("SELECT * FROM posts WHERE id = ?", (post_id,))
        return _post(row) if row else None

    async def posts(self, state: str | None = None, limit: int = 1000) -> list[Post]:
        where = "WHERE p.state = ?" if state else ""
        params: tuple[object, ...] = (state, limit) if state else (limit,)
        rows = await self._fetchall(
            "SELECT p.*, f.url AS feed_url, e.link AS link FROM posts p "
            "JOIN entries e ON e.id = p.entry_id JOIN feeds f ON f.id = e.feed_id "
            f"{where} ORDER BY p.id DESC LIMIT ?", params
        )
        return [_post(r) for r in rows]

    async def pending_count(self) -> int:
        """Posts waiting (state 'pending'): an index range, however long the history."""
        row = await self._fetchone("SELECT COUNT(*) FROM posts WHERE state = 'pending'")
        return int(row[0]) if row else 0

    async def post_counts(self) -> dict[str, int]:
        rows = await self._fetchall("SELECT state, COUNT(*) FROM posts GROUP BY state")
        counts = dict.fromkeys(POST_STATES, 0)
        counts.update({r[0]: r[1] for r in rows})
        return counts

    async def dry_run_posts(self) -> int:
        """How many articles a dry run recorded as handled (sent, "dry run: not posted")."""
        row = await self._fetchone(
            "SELECT COUNT(*) FROM posts WHERE state = 'sent' AND last_error = ?", (DRY_RUN_NOTE,))
        return int(row[0]) if row else 0

    async def sent_since(self, since: float) -> list[float]:
        """Times of the posts that went out on X since ``since``, oldest first (for the daily
        budget): confirmed ones and those settled by the duplicate-content 403; not dry runs."""
        rows = await self._fetchall(
            "SELECT sent_at FROM posts WHERE sent_at >= ? "
            "AND (tweet_id IS NOT NULL OR last_error LIKE 'already on X%') "
            "ORDER BY sent_at", (since,)
        )
        return [r[0] for r in rows]

    # -- meta ---------------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value)
        )


_THIS_ATTEMPT = "id = ? AND state = 'sending' AND attempts = ?"
_CLAIM = ("UPDATE posts SET state = 'sending', attempts = attempts + 1 "
          "WHERE id = ? AND state = 'pending'")


def _due_query(now: float, limit: int, exclude: Iterable[int]) -> tuple[str, tuple[object, ...]]:
    excluded = list(exclude)
    not_in = f"AND id NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
    # INDEXED BY: with statistics (ANALYZE, PRAGMA optimize) SQLite would rather scan every
    # post ever sent in id order than sort the few pending ones
    return (f"SELECT * FROM posts INDEXED BY posts_due WHERE state = 'pending' "
            f"AND next_attempt_at <= ? {not_in} ORDER BY id LIMIT ?", (now, *excluded, limit))


@contextlib.contextmanager
def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """A nested transaction: rolled back alone when its block raises."""
    conn.execute("SAVEPOINT one_row")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO one_row")
        conn.execute("RELEASE one_row")
        raise
    conn.execute("RELEASE one_row")


def _is_row_error(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused this row's values, rather than the write as a whole."""
    return "too big" in str(exc) or "too many" in str(exc)


def is_write_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be written right now (a full disk, an I/O
    error, a read-only file): a condition of the machine, not of the data."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _CANNOT_WRITE


def _open_problem(path: str, exc: sqlite3.Error) -> str:
    """What to tell the operator when SQLite cannot open or write ``path``."""
    text = str(exc)
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return _read_only_problem(path) or f"cannot open DATABASE_PATH={path!r}: {text}"
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return f"DATABASE_PATH={path!r} is not an SQLite database (is it the right file?): {text}"
    return f"DATABASE_PATH={path!r} is not a usable SQLite database: {text}"


def _read_only_problem(path: str) -> str | None:
    """Why this process cannot write the database file ``path`` or its folder, or None."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.exists(path) and not _writable(path):
        return f"DATABASE_PATH={path!r} is read-only: the bot must be able to write the file"
    if os.path.isdir(folder) and not _writable(folder):
        return (f"DATABASE_PATH={path!r}: its folder {folder!r} is read-only; the bot writes "
                "the database and its -wal and -shm files there")
    return None


def _writable(path: str) -> bool:
    """Whether this process may write ``path`` (a read-only mount counts as not)."""
    try:
        return os.access(path, os.W_OK) and not os.statvfs(path).f_flag & os.ST_RDONLY
    except OSError:
        return False


def _normalise_link(link: object) -> str | None:
    from bot.links import normalise_link

    try:
        return normalise_link(link) if isinstance(link, str) else None
    except Exception:  # an exception would abort the migration: keep that link as it is
        return None


def _in_transaction(fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back by itself (a full disk, say)
            conn.execute("ROLLBACK")
        raise
    return result


def _feed(row: sqlite3.Row) -> FeedRow:
    return FeedRow(
        id=row["id"], url=row["url"], title=row["title"], origin=row["origin"],
        active=bool(row["active"]), paused=bool(row["paused"]), gone=bool(row["gone"]),
        baselined=bool(row["baselined"]), etag=row["etag"], last_modified=row["last_modified"],
        last_status=row["last_status"], last_error=row["last_error"],
        consecutive_failures=row["consecutive_failures"], last_polled_at=row["last_polled_at"],
        last_success_at=row["last_success_at"], next_poll_at=row["next_poll_at"],
        template=row["template"], hashtags=row["hashtags"], include_re=row["include_re"],
        exclude_re=row["exclude_re"], backfill=row["backfill"], fetch_url=row["fetch_url"],
        mentions=row["mentions"],
    )


def _post(row: sqlite3.Row) -> Post:
    keys = row.keys()
    return Post(
        id=row["id"], entry_id=row["entry_id"], text=row["text"], state=row["state"],
        attempts=row["attempts"], next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"], tweet_id=row["tweet_id"], created_at=row["created_at"],
        sent_at=row["sent_at"],
        feed_url=row["feed_url"] if "feed_url" in keys else "",
        link=row["link"] if "link" in keys else None,
    )
