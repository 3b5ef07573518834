"""Opening the database file (DATABASE_PATH) for a command: is it usable, does it exist yet,
and — in :func:`read_feed_settings`, the CLI's only SQL of its own — reading a feed's settings
without writing a byte, for ``preview``."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Awaitable
from typing import TypeVar

from bot.errors import ConfigError, StorageError
from bot.store import Store
from bot.store.peek import FeedSettings, feed_settings

T = TypeVar("T")
SQLITE_HEADER = b"SQLite format 3\x00"
NO_DATABASE = ("no database at {path!r} yet (DATABASE_PATH): `{cmd} run` or `{cmd} feeds add URL` "
               "creates it")


def database_problem(path: str) -> str | None:
    """Why ``path`` cannot be the bot's database (a directory, not SQLite, …), or None."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    where = f"DATABASE_PATH={path!r}"
    if os.path.isdir(path):
        example = os.path.join(path, "bot.sqlite3")
        return f"{where} is a directory; expected a file such as {example!r}"
    if os.path.exists(path):
        try:
            with open(path, "rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except OSError as exc:
            return f"{where} cannot be read: {exc.strerror or exc}"
        if head and head != SQLITE_HEADER:
            return f"{where} is not an SQLite database (is it the right file?)"
        return None
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f"{where}: the directory {parent!r} does not exist"
    return None


def _usable_database(path: str) -> bool:
    """Raise ConfigError if ``path`` cannot be the database; say whether it exists yet."""
    if problem := database_problem(path):
        raise ConfigError(problem)
    return path == ":memory:" or os.path.exists(path)


async def open_store(path: str, *, create: bool) -> Store | None:
    """The store, migrated; None when the file does not exist and ``create`` is false."""
    if not _usable_database(path) and not create:
        return None
    try:
        return await Store.open(path)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot use the database {path!r} (DATABASE_PATH): {exc}") from None


async def _closing(store: Store, pending: Awaitable[T]) -> T:
    try:
        return await pending
    finally:
        await store.close()


def read_feed_settings(path: str, url: str) -> FeedSettings | None:
    """A subscribed feed's own settings, read without writing a byte (None if unknown)."""
    if database_problem(path):
        return None
    return feed_settings(path, url)
