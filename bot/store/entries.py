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

    async def seen(self, feed_id: int, entries: Sequence[Entry]
                   ) -> tuple[set[str], dict[str, frozenset[str] | None]]:
        """Which of these entries' ids this feed has seen, and for each of their links that
        any feed has seen, the destinations that have a post for it: None when an entry
        with that link has no post at all (recorded as seen: a first poll's, a filtered
        one), which stands for every destination."""
        keys = list({e.id for e in entries})
        links = list({e.link for e in entries if e.link})

        def read(conn: sqlite3.Connection
                 ) -> tuple[set[str], dict[str, frozenset[str] | None]]:
            seen_keys: set[str] = set()
            found: dict[str, set[str] | None] = {}
            for i in range(0, len(keys), CHUNK):
                chunk = keys[i:i + CHUNK]
                sql = (f"SELECT entry_key FROM entries WHERE feed_id = ? AND entry_key IN "
                       f"({','.join('?' * len(chunk))})")
                seen_keys.update(r[0] for r in conn.execute(sql, (feed_id, *chunk)))
            for i in range(0, len(links), CHUNK):
                chunk = links[i:i + CHUNK]
                sql = ("SELECT e.link, p.destination FROM entries e "
                       "LEFT JOIN posts p ON p.entry_id = e.id "
                       f"WHERE e.link IN ({','.join('?' * len(chunk))})")
                for link, destination in conn.execute(sql, chunk):
                    known = found.setdefault(link, set())
                    if destination is None:
                        found[link] = None
                    elif known is not None:
                        known.add(destination)
            covered = {link: None if d is None else frozenset(d) for link, d in found.items()}
            return seen_keys, covered

        return await self.db.run(read)

    async def record_poll(self, feed_id: int, new: Sequence[NewPost], now: float,
                          **feed_values: object) -> NewPostIds:
        """In ONE transaction: the new entries, a pending post for each destination with a
        text (a failed one for each with an error), and the feed's new state (validators,
        title, schedule). Returns the new pending posts' ids (``.articles``: how many articles
        they are for, one post per destination each).

        A post for a destination that already has one for another entry with the same link
        (another feed polled meanwhile, say the same blog's JSON Feed) is left out, and an
        entry left without posts is recorded as seen: the check runs inside the transaction,
        so two concurrent polls cannot both post it.

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
            if posts and item.entry.link and any(p.text is not None for p in posts):
                # another feed polled meanwhile may have this link: never posted twice
                posts = tuple(p for p in posts if not _covered(conn, item.entry.link,
                                                               p.destination))
            if not posts:
                conn.execute(insert, row(item.entry))  # seen
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


def _covered(conn: sqlite3.Connection, link: str, destination: str) -> bool:
    """Whether ``link`` is already handled for ``destination``: an entry with it has a post
    there, or has no post at all (it was recorded as seen)."""
    return conn.execute(
        "SELECT 1 FROM entries e WHERE e.link = ? AND (EXISTS (SELECT 1 FROM posts p "
        "WHERE p.entry_id = e.id AND p.destination = ?) OR NOT EXISTS (SELECT 1 FROM posts p "
        "WHERE p.entry_id = e.id)) LIMIT 1", (link, destination)).fetchone() is not None
