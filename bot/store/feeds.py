"""The feeds table: subscribing (FEED_URLS, ``feeds add``/``import``), flags, the rows the
worker polls, and writing a feed's state (:meth:`Feeds.update_feed`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from bot.store.buffer import FeedBuffer
from bot.store.db import CHUNK, Database, check_names
from bot.store.rows import (
    FEED_FLAGS,
    FEED_SETTINGS,
    FeedRow,
    check_feed_columns,
    feed_from_row,
)


class Feeds:
    """Reads and writes of the feeds table; reads see the buffer's deferred values."""

    def __init__(self, db: Database, buffer: FeedBuffer) -> None:
        self.db = db
        self.buffer = buffer

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

        return await self.db.transaction(write)

    async def add_feed(self, url: str, now: float, **settings: object) -> FeedRow:
        """Subscribe to ``url`` (again, if it was removed) with these :data:`FEED_SETTINGS`."""
        check_names("feed settings", settings, FEED_SETTINGS)
        columns = settings

        def write(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT id FROM feeds WHERE url = ?", (url,)).fetchone() is None:
                conn.execute("INSERT INTO feeds (url, origin, created_at) VALUES (?, 'cli', ?)",
                             (url, now))
            else:
                conn.execute("UPDATE feeds SET active = 1 WHERE url = ?", (url,))
            for name, value in columns.items():
                conn.execute(f"UPDATE feeds SET {name} = ? WHERE url = ?", (value, url))

        await self.db.transaction(write)
        feed = await self.feed_by_url(url)
        assert feed is not None
        return feed

    async def import_feeds(self, urls: Sequence[str], now: float) -> list[str]:
        """Subscribe to every URL not subscribed yet, in one transaction (``feeds import``);
        a removed one is polled again. Returns the URLs that were new."""
        def write(conn: sqlite3.Connection) -> list[str]:
            known: set[str] = set()
            for i in range(0, len(urls), CHUNK):
                chunk = list(urls[i:i + CHUNK])
                known.update(r[0] for r in conn.execute(
                    f"SELECT url FROM feeds WHERE url IN ({','.join('?' * len(chunk))})", chunk))
            new = [u for u in dict.fromkeys(urls) if u not in known]
            conn.executemany("INSERT INTO feeds (url, origin, created_at) VALUES (?, 'cli', ?)",
                             [(u, now) for u in new])
            conn.executemany("UPDATE feeds SET active = 1 WHERE url = ?",
                             [(u,) for u in known])
            return new

        return await self.db.transaction(write)

    async def set_feed_flag(self, url: str, **flags: int) -> bool:
        """Set :data:`FEED_FLAGS` (active, paused, gone); False if there is no such feed."""
        check_names("feed flags", flags, FEED_FLAGS)
        if not flags:
            raise ValueError(f"no feed flag given (known: {sorted(FEED_FLAGS)})")
        assignments = ", ".join(f"{k} = ?" for k in flags)
        changed = await self.db.execute(f"UPDATE feeds SET {assignments} WHERE url = ?",
                                        (*flags.values(), url))
        return changed > 0

    async def feed_by_url(self, url: str) -> FeedRow | None:
        await self.buffer.flush_before_reading()
        row = await self.db.fetchone("SELECT * FROM feeds WHERE url = ?", (url,))
        return self.buffer.overlay(feed_from_row(row)) if row else None

    async def feeds(self, *, pollable_only: bool = False) -> list[FeedRow]:
        await self.buffer.flush_before_reading()
        where = "WHERE active = 1 AND paused = 0 AND gone = 0" if pollable_only else ""
        return [self.buffer.overlay(feed_from_row(r))
                for r in await self.db.fetchall(f"SELECT * FROM feeds {where} ORDER BY id")]

    async def feed_summary(self) -> tuple[dict[str, int], float | None] | None:
        """Feeds by state and the last successful poll, counted in SQL (10,000 feeds are
        not read into rows for it). None while deferred updates cannot be written (a full
        disk): then only the rows with those updates laid over them are right."""
        await self.buffer.flush_before_reading()
        if self.buffer.holds_any():
            return None
        rows = await self.db.fetchall(f"SELECT {_STATE_SQL} AS state, COUNT(*), "
                                      "MAX(last_success_at) FROM feeds GROUP BY state")
        last = max((r[2] for r in rows if r[2] is not None), default=None)
        return {r[0]: r[1] for r in rows}, last

    async def failing_feeds(self) -> list[FeedRow]:
        """The feeds that are failing or gone (what ``status`` lists under the counts)."""
        await self.buffer.flush_before_reading()
        return [self.buffer.overlay(feed_from_row(r)) for r in await self.db.fetchall(
            f"SELECT * FROM feeds WHERE {_STATE_SQL} IN ('failing', 'gone') ORDER BY id")]

    async def feed_counts(self) -> dict[int, tuple[int, int]]:
        """feed id -> (articles seen, posts sent)."""
        rows = await self.db.fetchall(
            "SELECT e.feed_id, COUNT(*) AS seen, "
            "SUM(CASE WHEN p.state = 'sent' THEN 1 ELSE 0 END) AS sent "
            "FROM entries e LEFT JOIN posts p ON p.entry_id = e.id GROUP BY e.feed_id"
        )
        return {r["feed_id"]: (r["seen"], r["sent"] or 0) for r in rows}

    async def update_feed(self, feed_id: int, **values: object) -> None:
        check_feed_columns(values)
        with self.buffer.taking(feed_id) as deferred:
            values = {**deferred, **values}  # never reordered
            if not values:
                return  # nothing changed, nothing to write
            assignments = ", ".join(f"{k} = ?" for k in values)
            await self.db.execute(f"UPDATE feeds SET {assignments} WHERE id = ?",
                                  (*values.values(), feed_id))


# FeedRow.state, in SQL (the same order of tests: gone, paused, inactive, failing, ok, new)
_STATE_SQL = ("CASE WHEN gone THEN 'gone' WHEN paused THEN 'paused' WHEN NOT active THEN "
              "'inactive' WHEN consecutive_failures > 0 THEN 'failing' "
              "WHEN last_success_at IS NOT NULL AND last_success_at <> 0 THEN 'ok' ELSE 'new' END")
