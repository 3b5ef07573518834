"""Reading the database without writing a byte: what ``preview`` needs while a service runs.

:class:`~bot.store.Store` opens the database to migrate and write it. ``preview`` only wants a
subscribed feed's own settings, and must not create the database, its ``-wal``/``-shm``
files, or a lock. Without a ``-wal`` file (no service running) the file is opened
``immutable``, which creates nothing; with one, read-only, which sees the newest commits.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """A feed's own settings (None: the environment's value applies)."""

    template: str | None = None
    hashtags: str | None = None
    include_re: str | None = None
    exclude_re: str | None = None
    mentions: str | None = None
    destinations: str | None = None  # "x,mastodon" (`feeds add --to`)


def feed_settings(path: str, url: str) -> FeedSettings | None:
    """The settings of the feed ``url`` in the database at ``path``; None when there is no
    such database (or no such feed, or the file cannot be read as one)."""
    if path == ":memory:" or not os.path.isfile(path):
        return None
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    if not os.path.exists(path + "-wal"):
        uri += "&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            columns = {r[1] for r in conn.execute("PRAGMA table_info(feeds)")}
            wanted = [c for c in ("template", "hashtags", "include_re", "exclude_re",
                                  "mentions", "destinations") if c in columns]
            found = conn.execute(f"SELECT {', '.join(wanted)} FROM feeds WHERE url = ?",
                                 (url,)).fetchone()
            row = dict(zip(wanted, found, strict=True)) if found else None
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return FeedSettings(**row) if row else None
