"""The schema: applying ``migrations/NNNN_name.sql`` (read by :mod:`bot.schema`), tracked by
``PRAGMA user_version``, each in its own transaction; a database newer than the code is
refused."""

from __future__ import annotations

import logging
import sqlite3
from importlib.resources.abc import Traversable
from pathlib import Path

from bot.errors import SchemaTooNewError, StorageError
from bot.schema import migration_scripts
from bot.store.db import APPLICATION_ID, Database

log = logging.getLogger(__name__)


async def register_functions(db: Database) -> None:
    """The SQL functions the migrations call (0003 normalises the links earlier versions
    stored)."""
    await db.conn.create_function("normalise_link", 1, _normalise_link, deterministic=True)


async def user_version(db: Database) -> int:
    rows = await db.conn.execute_fetchall("PRAGMA user_version")
    return int(next(iter(rows))[0]) if rows else 0


async def check_version(db: Database, directory: Traversable | Path | None) -> int:
    """The database's schema version; :class:`SchemaTooNewError` if this code is older."""
    try:
        version = await user_version(db)
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{db.path!r} is not a usable SQLite database: {exc}") from exc
    latest = len(migration_scripts(directory))
    if version > latest:
        raise SchemaTooNewError(
            f"the database {db.path!r} has schema version {version}, but this version "
            f"of the bot knows only up to {latest}: it was written by a newer bot. "
            "Upgrade the bot, or point DATABASE_PATH at another file."
        )
    return version


async def migrate(db: Database, directory: Traversable | Path | None) -> int:
    """Apply every migration newer than the database, each in its own transaction,
    which also marks the file as the bot's (``PRAGMA application_id``)."""
    async with db.lock:
        version = await check_version(db, directory)
        for number, name, script in migration_scripts(directory):
            if number <= version:
                continue
            try:
                await db.conn.executescript(
                    f"BEGIN IMMEDIATE;\n{script}\n;PRAGMA user_version = {number};\n"
                    f"PRAGMA application_id = {APPLICATION_ID};\nCOMMIT;"
                )
            except sqlite3.Error as exc:
                if db.conn.in_transaction:
                    await db.conn.execute("ROLLBACK")
                raise StorageError(f"migration {name} failed: {exc}") from exc
            log.info("migration_applied name=%s version=%d", name, number)
        return await user_version(db)


def _normalise_link(link: object) -> str | None:
    from bot.links import normalise_link

    try:
        return normalise_link(link) if isinstance(link, str) else None
    except Exception:  # an exception would abort the migration: keep that link as it is
        return None
