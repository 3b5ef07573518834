"""One service per database, enforced by the operating system.

``bot run`` (``--once`` and ``DRY_RUN`` too) holds an exclusive ``flock`` on a lock file beside
the database (``DATABASE_PATH`` + ``.lock``) from before it touches the database until it exits.
A second ``run`` on the same database finds the lock taken and stops at once, before it opens
the database, naming the process that holds it. The kernel releases the lock when the holder
exits, however it exits (``kill -9`` included), so a stale lock file is harmless: it is never
deleted, which would let two processes lock two different files of the same name.

The operator's short commands (``feeds``, ``posts``, ``status``, ``preview``) take no lock: they
work beside the running service, as SQLite lets them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator

from bot.errors import BotError, StorageError
from bot.store.db import read_only_problem


class AlreadyRunningError(BotError):
    """Another ``bot run`` holds the database's lock."""


def lock_path(database_path: str) -> str | None:
    """The lock file of ``database_path``; None for an in-memory database."""
    if database_path == ":memory:" or database_path.startswith("file::memory:"):
        return None
    return database_path + ".lock"


@contextlib.contextmanager
def service_lock(database_path: str) -> Iterator[None]:
    """Hold the database's lock for the life of the block, or raise AlreadyRunningError
    (another holder) or StorageError (no lock file can be made: a read-only folder...)."""
    path = lock_path(database_path)
    if path is None:
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if os.path.exists(path):
            raise StorageError(f"DATABASE_PATH={database_path!r}: cannot open its lock file "
                               f"{path!r} for writing ({exc.strerror})") from None
        # the database's own check says why (a read-only folder, most likely)
        raise StorageError(read_only_problem(database_path) or
                           f"DATABASE_PATH={database_path!r}: cannot create the lock file "
                           f"{path!r} ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = _read_pid(fd)
            raise AlreadyRunningError(
                f"another bot is running on DATABASE_PATH={database_path}"
                f"{f' (pid {holder})' if holder else ''}: one service per database. "
                "Stop it first, or give this one its own DATABASE_PATH") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None
