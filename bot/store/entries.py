"""The entries table: which articles a feed has seen, and recording a poll (its new entries,
the post each is owed, the feed's new state) in one transaction."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

from bot.delivery import new_key
from bot.models import Entry
from bot.store.buffer import FeedBuffer
from bot.store.db import CHUNK, Database, is_row_error, savepoint
from bot.store.rows import NewPost, check_feed_columns

log = logging.getLogger(__name__)


class NewPostIds(list[int]):
    """The ids of the pending posts a poll recorded, and how many articles they are for."""

    articles: int = 0


class Entries:
    """Reads of the entries table, and the one write of a poll (:meth:`record_poll`)."""

    def __init__(self, db: Database, buffer: FeedBuffer) -> None:
        self.db = db
        self.buffer = buffer

    async def seen(self, feed_id: int, entries: Sequence[Entry]) -> tuple[set[str], set[str]]:
        """Which of these entries' ids this feed has seen, and which links any feed has seen."""
        keys = list({e.id for e in entries})
        links = list({e.link for e in entries if e.link})

        def read(conn: sqlite3.Connection) -> tuple[set[str], set[str]]:
            seen_keys: set[str] = set()
            seen_links: set[str] = set()
            for i in range(0, len(keys), CHUNK):
                chunk = keys[i:i + CHUNK]
                sql = (f"SELECT entry_key FROM entries WHERE feed_id = ? AND entry_key IN "
                       f"({','.join('?' * len(chunk))})")
                seen_keys.update(r[0] for r in conn.execute(sql, (feed_id, *chunk)))
            for i in range(0, len(links), CHUNK):
                chunk = links[i:i + CHUNK]
                sql = f"SELECT link FROM entries WHERE link IN ({','.join('?' * len(chunk))})"
                seen_links.update(r[0] for r in conn.execute(sql, chunk))
            return seen_keys, seen_links

        return await self.db.run(read)

    async def record_poll(self, feed_id: int, new: Sequence[NewPost], now: float,
                          **feed_values: object) -> NewPostIds:
        """In ONE transaction: the new entries, a pending post for each destination with a
        text (a failed one for each with an error), and the feed's new state (validators,
        title, schedule). Returns the new pending posts' ids (``.articles``: how many articles
        they are for, one post per destination each).

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

        def write_one(conn: sqlite3.Connection, item: NewPost) -> list[int]:
            posts = item.posts()
            if not posts:
                conn.execute(insert, row(item.entry))
                return []
            if item.entry.link and any(p.text is not None for p in posts) and conn.execute(
                    "SELECT 1 FROM entries WHERE link = ? LIMIT 1",
                    (item.entry.link,)).fetchone() is not None:
                conn.execute(insert, row(item.entry))  # seen, never posted twice
                return []
            cur = conn.execute(insert, row(item.entry))
            if cur.rowcount != 1 or not cur.lastrowid:
                return []
            entry_id = cur.lastrowid
            ids = []
            for out in posts:
                if out.text is None:
                    conn.execute(
                        "INSERT INTO posts (entry_id, destination, text, state, last_error, "
                        "created_at) VALUES (?, ?, '', 'failed', ?, ?)",
                        (entry_id, out.destination, (out.error or "cannot be posted")[:1000],
                         now))
                    continue
                post_id = conn.execute(
                    "INSERT INTO posts (entry_id, destination, text, created_at, post_key, card) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (entry_id, out.destination, out.text, now, new_key(), out.card)).lastrowid
                if post_id:
                    ids.append(post_id)
            return ids

        def write(conn: sqlite3.Connection) -> NewPostIds:
            post_ids = NewPostIds()
            seen_only = [row(i.entry) for i in new if not i.posts()]
            try:
                with savepoint(conn):
                    conn.executemany(insert, seen_only)
                rest = [i for i in new if i.posts()]
            except (sqlite3.Error, ValueError):  # one bad row: find it, keep the others
                rest = list(new)
            for item in rest:
                try:
                    with savepoint(conn):
                        ids = write_one(conn, item)
                except (sqlite3.Error, ValueError) as exc:
                    if isinstance(exc, sqlite3.OperationalError) and not is_row_error(exc):
                        raise  # the disk, not the row: the whole poll fails and is retried
                    log.warning("entry_unstorable feed_id=%d entry=%r error=%s",
                                feed_id, item.entry.id[:200], exc)
                    continue
                if ids:
                    post_ids.extend(ids)
                    post_ids.articles += 1
            if feed_values:
                assignments = ", ".join(f"{k} = ?" for k in feed_values)
                conn.execute(f"UPDATE feeds SET {assignments} WHERE id = ?",
                             (*feed_values.values(), feed_id))
            return post_ids

        check_feed_columns(feed_values)
        with self.buffer.taking(feed_id) as deferred:
            feed_values = {**deferred, **feed_values}  # never reordered; write() reads it
            return await self.db.transaction(write)
