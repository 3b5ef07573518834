"""The connection: opening the file safely, running SQL on aiosqlite's thread, transactions,
and whether the database can be written right now.

One aiosqlite connection in autocommit mode. Every call takes :attr:`Database.lock`, so the
statements of one transaction are never interleaved with another task's. Each call is one
function run on aiosqlite's database thread (:meth:`Database.run`): one trip there and back,
however many statements it runs; a transaction (``BEGIN IMMEDIATE`` … ``COMMIT``) runs whole
inside one such function (:meth:`Database.transaction`).

aiosqlite has no public way to run a function on its thread (its maintainer declined one:
omnilib/aiosqlite#19), so :meth:`Database.run` is the one place that uses its private
``Connection._execute``; ``tests/test_store.py`` checks that it still does what is assumed.
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
from typing import TypeVar

import aiosqlite

from bot.errors import StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLite's default limit on host parameters is 32766 (3.32+); stay far below it.
CHUNK = 500
# SQLite's primary result codes for "cannot write now": READONLY, IOERR, FULL, CANTOPEN
_CANNOT_WRITE = frozenset({8, 10, 13, 14})
UNWRITABLE_LOG_EVERY = 60.0
# The bot's mark in the database header (PRAGMA application_id): "FTwt". With it, and only
# with it, may a file that already holds tables be migrated.
APPLICATION_ID = 0x46547774
BOT_TABLES = frozenset({"feeds", "entries", "posts", "meta"})


def check_names(what: str, names: Iterable[str], allowed: frozenset[str]) -> None:
    """Refuse a name that is not in ``allowed`` before it is written into SQL: names (of
    columns, flags, settings) are the one part of a statement that is not a parameter."""
    unknown = set(names) - allowed
    if unknown:
        raise ValueError(f"unknown {what}: {sorted(unknown)} (known: {sorted(allowed)})")


class Database:
    """The store's connection, its lock, and the write-failure tracking."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.lock = asyncio.Lock()
        # set while writes fail (a full disk, an I/O error): the last error, for /healthz
        self.unwritable: str | None = None
        self._unwritable_since = self._unwritable_logged = 0.0
        self._failed_writes = 0

    async def configure(self) -> None:
        """The connection's settings, before anything is read."""
        await self.conn.execute("PRAGMA busy_timeout = 10000")
        await self.conn.execute("PRAGMA foreign_keys = ON")

    async def use_wal(self) -> None:
        """WAL + NORMAL is durable against a killed process (not against power loss).
        Switched only once the file is known to be the bot's and migrated, so that a
        refused or failed one is left as it was."""
        await self.conn.execute("PRAGMA journal_mode = WAL")
        await self.conn.execute("PRAGMA synchronous = NORMAL")

    async def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: changes when another connection (the CLI, say)
        commits, never for this connection's own writes."""
        row = await self.fetchone("PRAGMA data_version")
        return int(row[0]) if row else 0

    async def check_ownership(self) -> None:
        """Refuse a database that is not the bot's: tables, but not the bot's mark.

        The bot's databases carry :data:`APPLICATION_ID`; those written before it had the
        mark are recognised by their tables and schema version, and get the mark when
        migrated. An empty file is the bot's to take."""
        mark = (await self.fetchone("PRAGMA application_id"))[0]  # type: ignore[index]
        if mark == APPLICATION_ID:
            return
        tables = {r[0] for r in await self.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if mark == 0 and (not tables or (BOT_TABLES <= tables and (
                await self.fetchone("PRAGMA user_version"))[0])):  # type: ignore[index]
            return  # new, or the bot's from before the mark
        what = (f"carries application_id {mark:#x}, another program's mark" if mark else
                f"holds tables the bot did not make ({', '.join(sorted(tables)[:5])})")
        raise StorageError(
            f"DATABASE_PATH={self.path!r} is not a feed-tweeter database: it {what}. It was "
            "left unchanged; point DATABASE_PATH at a new file or at the bot's own database")

    async def close(self) -> None:
        async with self.lock:
            await self.conn.close()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on aiosqlite's database thread, in ONE trip there and back,
        however many statements it runs (aiosqlite's own calls take a trip each: execute,
        fetch and close a cursor are three; each trip wakes that thread and then the event
        loop). ``Connection._execute`` is how aiosqlite runs every one of its calls; it is
        private, and this is the only use of it (see the module docstring)."""
        async with self.lock:
            return await self.conn._execute(fn, self.conn._conn)  # type: ignore[no-any-return]

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`run` inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error)."""
        return await self.write(functools.partial(_in_transaction, fn))

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`run` for a write, keeping :attr:`unwritable` up to date: a full disk, an
        I/O error or a read-only file fails every write until it is mended. The log says
        so when it starts, once a minute while it lasts, and when writing works again."""
        try:
            result = await self.run(fn)
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

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return await self.run(lambda conn: conn.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Row | None:
        return await self.run(lambda conn: conn.execute(sql, params).fetchone())

    async def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """One write statement (autocommit); the number of rows it changed."""
        return await self.write(lambda conn: conn.execute(sql, params).rowcount)


async def connect(path: str, *, writable: bool) -> aiosqlite.Connection:
    """Open ``path`` in autocommit mode, checking first, when ``writable``, that this process
    may write it (SQLite would open it read-only without a word, and fail at the first
    write)."""
    if writable and (problem := read_only_problem(path)):
        raise StorageError(problem)
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(open_problem(path, exc)) from exc
    conn.row_factory = sqlite3.Row
    return conn


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


@contextlib.contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """A nested transaction: rolled back alone when its block raises."""
    conn.execute("SAVEPOINT one_row")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO one_row")
        conn.execute("RELEASE one_row")
        raise
    conn.execute("RELEASE one_row")


def is_row_error(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused this row's values, rather than the write as a whole."""
    return "too big" in str(exc) or "too many" in str(exc)


def is_write_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be written right now (a full disk, an I/O
    error, a read-only file): a condition of the machine, not of the data."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _CANNOT_WRITE


def open_problem(path: str, exc: sqlite3.Error) -> str:
    """What to tell the operator when SQLite cannot open or write ``path``."""
    text = str(exc)
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return read_only_problem(path) or f"cannot open DATABASE_PATH={path!r}: {text}"
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return f"DATABASE_PATH={path!r} is not an SQLite database (is it the right file?): {text}"
    return f"DATABASE_PATH={path!r} is not a usable SQLite database: {text}"


def read_only_problem(path: str) -> str | None:
    """Why this process cannot write the database file ``path`` or its folder, or None."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(folder) and not _writable(folder):
        return (f"DATABASE_PATH={path!r}: its folder {folder!r} is read-only; the bot writes "
                "the database and its -wal, -shm and .lock files there")
    if os.path.exists(path) and not _writable(path):
        return f"DATABASE_PATH={path!r} is read-only: the bot must be able to write the file"
    return None


def _writable(path: str) -> bool:
    """Whether this process may write ``path`` (a read-only mount counts as not)."""
    try:
        return os.access(path, os.W_OK) and not os.statvfs(path).f_flag & os.ST_RDONLY
    except OSError:
        return False
