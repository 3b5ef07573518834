"""The posts table: the durable queue of posts. Claiming the due ones, writing each
attempt's outcome (only for the attempt that is sending), and the counts health reports."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from bot.store.db import Database
from bot.store.rows import DRY_RUN_NOTE, POST_STATES, DuePass, Post, post_from_row


class Posts:
    """Reads and writes of the posts table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def requeue_interrupted(self, destination: str = "x") -> int:
        """At start-up: a post of this destination left 'sending' by a crash goes back to
        'pending' (only this destination's: another's dispatcher may be sending already)."""
        return await self.db.execute(
            "UPDATE posts SET state = 'pending', next_attempt_at = 0 "
            "WHERE destination = ? AND state = 'sending'", (destination,)
        )

    async def due_posts(self, now: float, limit: int, exclude: Iterable[int] = (),
                        destination: str = "x") -> list[Post]:
        sql, params = _due_query(now, limit, exclude, destination)
        return [post_from_row(r) for r in await self.db.fetchall(sql, params)]

    async def claim_due(self, now: float, limit: int, exclude: Iterable[int] = (),
                        destination: str = "x") -> DuePass:
        """In ONE transaction: claim up to ``limit`` due posts, oldest first (pending ->
        sending, an attempt counted), then count those left pending and find when the next
        is due. One trip where :meth:`due_posts`, :meth:`claim` for each,
        :meth:`pending_count` and :meth:`next_due_at` took four or more."""
        sql, params = _due_query(now, limit, exclude, destination)

        def write(conn: sqlite3.Connection) -> DuePass:
            claimed = []
            for row in conn.execute(sql, params).fetchall():
                if conn.execute(_CLAIM, (row["id"],)).rowcount == 1:
                    claimed.append(post_from_row(row))
            pending, next_due = conn.execute(
                "SELECT COUNT(*), MIN(next_attempt_at) FROM posts "
                "WHERE destination = ? AND state = 'pending'", (destination,)
            ).fetchone()
            return DuePass(claimed, int(pending), next_due)

        return await self.db.transaction(write)

    async def next_due_at(self, destination: str = "x") -> float | None:
        row = await self.db.fetchone(
            "SELECT MIN(next_attempt_at) FROM posts WHERE destination = ? AND state = 'pending'",
            (destination,))
        return row[0] if row and row[0] is not None else None

    async def claim(self, post_id: int) -> bool:
        """pending -> sending, committed before the call to X. False if someone else has it."""
        return await self.db.execute(_CLAIM, (post_id,)) == 1

    # A post's outcome is written only while the post is still ``sending`` with the attempt
    # that ``post`` (as claimed) started: a stale writer (another process, an answer that came
    # after a requeue) can never erase a tweet id or bring a sent post back. False: not written.

    async def mark_sent(self, post: Post, tweet_id: str | None, now: float,
                        note: str | None = None) -> bool:
        return await self.db.execute(
            "UPDATE posts SET state = 'sent', tweet_id = ?, sent_at = ?, last_error = ? "
            f"WHERE {_THIS_ATTEMPT}", (tweet_id, now, note, post.id, post.attempts + 1)) == 1

    async def mark_pending(self, post: Post, next_attempt_at: float, error: str | None,
                           *, refund_attempt: bool = False) -> bool:
        return await self.db.execute(
            "UPDATE posts SET state = 'pending', next_attempt_at = ?, last_error = ?, "
            f"attempts = attempts - ? WHERE {_THIS_ATTEMPT}",
            (next_attempt_at, error, 1 if refund_attempt else 0, post.id, post.attempts + 1),
        ) == 1

    async def mark_failed(self, post: Post, error: str) -> bool:
        return await self.db.execute(
            f"UPDATE posts SET state = 'failed', last_error = ? WHERE {_THIS_ATTEMPT}",
            (error, post.id, post.attempts + 1)) == 1

    async def due_now(self, destination: str, now: float) -> int:
        """Every pending post of ``destination`` that was backing off is due now (the network
        answers again after it was down: the backlog goes out oldest first)."""
        return await self.db.execute(
            "UPDATE posts SET next_attempt_at = 0 WHERE destination = ? AND state = 'pending' "
            "AND next_attempt_at > ?", (destination, now))

    async def retry_failed(self, post_ids: Iterable[int] | None) -> int:
        """failed -> pending again (all failed posts when ``post_ids`` is None), with a new
        MAX_POST_AGE. The attempts made are kept: one may have landed, and the next attempt
        must look first (Bluesky's getRecord). A post that never had a text (its entry could
        not become one) is not retried: nothing would be sent but an empty post."""
        retry = ("UPDATE posts SET state = 'pending', next_attempt_at = 0, "
                 "created_at = strftime('%s','now') WHERE state = 'failed' AND text <> ''")
        if post_ids is None:
            return await self.db.execute(retry)
        changed = 0
        for pid in post_ids:
            changed += await self.db.execute(retry + " AND id = ?", (pid,))
        return changed

    async def post(self, post_id: int) -> Post | None:
        row = await self.db.fetchone("SELECT * FROM posts WHERE id = ?", (post_id,))
        return post_from_row(row) if row else None

    async def posts(self, state: str | None = None, limit: int = 1000,
                    destination: str | None = None) -> list[Post]:
        """The newest posts, of one state and one destination when given."""
        conditions = [c for c, v in (("p.state = ?", state),
                                     ("p.destination = ?", destination)) if v]
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        params = (*(v for v in (state, destination) if v), limit)
        rows = await self.db.fetchall(
            "SELECT p.*, f.url AS feed_url, e.link AS link FROM posts p "
            "JOIN entries e ON e.id = p.entry_id JOIN feeds f ON f.id = e.feed_id "
            f"{where} ORDER BY p.id DESC LIMIT ?", params
        )
        return [post_from_row(r) for r in rows]

    async def pending_count(self, destination: str | None = None) -> int:
        """Posts waiting (state 'pending'), of one destination or all: an index range,
        however long the history."""
        if destination is None:
            row = await self.db.fetchone("SELECT COUNT(*) FROM posts WHERE state = 'pending'")
        else:
            row = await self.db.fetchone(
                "SELECT COUNT(*) FROM posts WHERE destination = ? AND state = 'pending'",
                (destination,))
        return int(row[0]) if row else 0

    async def post_counts(self, destination: str | None = None) -> dict[str, int]:
        """How many posts are in each state, of one destination or all."""
        if destination is None:
            rows = await self.db.fetchall("SELECT state, COUNT(*) FROM posts GROUP BY state")
        else:
            rows = await self.db.fetchall(
                "SELECT state, COUNT(*) FROM posts WHERE destination = ? GROUP BY state",
                (destination,))
        counts = dict.fromkeys(POST_STATES, 0)
        counts.update({r[0]: r[1] for r in rows})
        return counts

    async def destination_counts(self) -> dict[str, dict[str, int]]:
        """Posts per destination and state (``status``, /healthz): one read."""
        rows = await self.db.fetchall(
            "SELECT destination, state, COUNT(*) FROM posts GROUP BY destination, state")
        counts: dict[str, dict[str, int]] = {}
        for destination, state, n in rows:
            counts.setdefault(destination, dict.fromkeys(POST_STATES, 0))[state] = n
        return counts

    async def dry_run_posts(self) -> int:
        """How many articles a dry run recorded as handled (sent, "dry run: not posted")."""
        row = await self.db.fetchone(
            "SELECT COUNT(*) FROM posts WHERE state = 'sent' AND last_error = ?", (DRY_RUN_NOTE,))
        return int(row[0]) if row else 0

    async def sent_since(self, since: float, destination: str = "x") -> list[float]:
        """Times of the posts that went out to ``destination`` since ``since``, oldest first
        (for the budgets): confirmed ones and those settled as already there; not dry runs."""
        rows = await self.db.fetchall(
            "SELECT sent_at FROM posts INDEXED BY posts_sent_at WHERE sent_at >= ? "
            f"AND destination = ? AND {_WENT_OUT} ORDER BY sent_at", (since, destination))
        return [r[0] for r in rows]

    async def sent_counts(self, *since: float) -> dict[str, list[int]]:
        """How many posts went out to each destination since each of ``since`` (what
        ``status`` and /metrics show: the last 24 hours, the last 30 days), in one read."""
        columns = ", ".join("SUM(sent_at >= ?)" for _ in since)
        rows = await self.db.fetchall(
            f"SELECT destination, {columns} FROM posts INDEXED BY posts_sent_at "
            f"WHERE sent_at >= ? AND {_WENT_OUT} GROUP BY destination", (*since, min(since)))
        return {r[0]: [int(n or 0) for n in tuple(r)[1:]] for r in rows}


# a post that went out: confirmed, or settled as already there (X's duplicate-content 403,
# a Bluesky record found under its key)
_WENT_OUT = "(tweet_id IS NOT NULL OR last_error LIKE 'already on %')"
_THIS_ATTEMPT = "id = ? AND state = 'sending' AND attempts = ?"
_CLAIM = ("UPDATE posts SET state = 'sending', attempts = attempts + 1 "
          "WHERE id = ? AND state = 'pending'")


def _due_query(now: float, limit: int, exclude: Iterable[int],
               destination: str) -> tuple[str, tuple[object, ...]]:
    excluded = list(exclude)
    not_in = f"AND id NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
    # INDEXED BY: with statistics (ANALYZE, PRAGMA optimize) SQLite would rather scan every
    # post ever sent in id order than sort the few pending ones
    return (f"SELECT * FROM posts INDEXED BY posts_due WHERE destination = ? "
            f"AND state = 'pending' AND next_attempt_at <= ? {not_in} ORDER BY id LIMIT ?",
            (destination, now, *excluded, limit))
