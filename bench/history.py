"""Benchmark 4: the cost of a poll must not grow with history.

A bot database (the real migrations, via :meth:`bot.store.Store.open`) is seeded with
sqlite3 directly, fast (one transaction, ``executemany``): ``feeds`` feeds, and entries
spread over them, each with a sent post, sent over the past year. We time what one poll
does against the database, through the bot's :class:`~bot.store.Store` (aiosqlite):

* a 304: ``update_feed``;
* a 200 of a 50-entry feed with one new article: ``seen`` (49 known + 1 new ids and links)
  and ``record_poll`` (the new entry, its post, the feed's new state: one transaction);

and what the dispatcher does on each pass (``due_posts``, ``next_due_at``, ``post_counts``,
``sent_since`` for MAX_POSTS_PER_DAY). First with ``small`` entries, then the same database
grown to ``large`` entries; the ratio large/small should be about 1.0 for anything on the
poll path. ``EXPLAIN QUERY PLAN`` shows which index each lookup uses.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import fmt, load_average, log_line, module_main, run_child

FULL: dict[str, Any] = dict(small=10_000, large=1_000_000, feeds=1_000, polls=300)
QUICK: dict[str, Any] = dict(small=10_000, large=100_000, feeds=1_000, polls=100)
YEAR = 365 * 86400.0


def _link(feed: int, n: int) -> str:
    return f"https://blog{feed:05d}.example.org/posts/{n:08d}"


def seed(path: str, feeds: int, start: int, stop: int, now: float) -> float:
    """Entries start..stop-1 (round-robin over the feeds, feed by feed), each with a post
    sent sometime in the past year. Returns the seconds it took."""
    t = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    if start == 0:
        conn.executemany(
            "INSERT INTO feeds (id, url, created_at, baselined, next_poll_at) "
            "VALUES (?, ?, ?, 1, ?)",
            [(f + 1, f"https://blog{f:05d}.example.org/feed.xml", now - YEAR, now + 3600)
             for f in range(feeds)])
    per_feed = range(start // feeds, (stop + feeds - 1) // feeds)
    batch: list[tuple[object, ...]] = []
    posts: list[tuple[object, ...]] = []
    for f in range(feeds):
        for n in per_feed:
            i = n * feeds + f
            if not start <= i < stop:
                continue
            at = now - YEAR + YEAR * i / stop
            batch.append((i + 1, f + 1, _link(f, n), _link(f, n), f"Post {n} of blog {f}",
                          at, at))
            posts.append((i + 1, i + 1, f"Post {n} of blog {f} {_link(f, n)}", "sent", 1,
                           str(10**18 + i), at, at + 5))
            if len(batch) >= 50_000:
                _flush(conn, batch, posts)
    _flush(conn, batch, posts)
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - t


def _flush(conn: sqlite3.Connection, batch: list, posts: list) -> None:  # type: ignore[type-arg]
    conn.executemany("INSERT INTO entries (id, feed_id, entry_key, link, title, published_at, "
                     "first_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
    conn.executemany("INSERT INTO posts (id, entry_id, text, state, attempts, tweet_id, "
                     "created_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", posts)
    batch.clear()
    posts.clear()


async def measure(path: str, feeds: int, entries: int, polls: int,
                  pragmas: tuple[str, ...] = ()) -> dict[str, Any]:
    """Median wall time and mean CPU of each store operation, over ``polls`` polls."""
    from bot.models import Entry
    from bot.store import NewPost, Store

    store = await Store.open(path)
    for pragma in pragmas:  # a candidate setting, on the bot's own connection
        await store.db.execute(pragma)
    per_feed = entries // feeds
    wall: dict[str, list[float]] = {}
    cpu: dict[str, float] = {}

    async def timed(name: str, coro):  # type: ignore[no-untyped-def]
        c, t = time.process_time(), time.perf_counter()
        result = await coro
        wall.setdefault(name, []).append(time.perf_counter() - t)
        cpu[name] = cpu.get(name, 0.0) + time.process_time() - c
        return result

    now = time.time()
    for k in range(polls):
        f = (k * 7919) % feeds  # spread over the feeds
        fid = f + 1
        known = [Entry(id=_link(f, n), link=_link(f, n), title=f"Post {n} of blog {f}")
                 for n in range(max(0, per_feed - 49), per_feed)]
        fresh = f"https://blog{f:05d}.example.org/new/{k}"
        newest = k
        new = Entry(id=fresh, link=fresh, title=f"New post {k}")
        page = [new, *known]
        await timed("update_feed (304)", store.update_feed(
            fid, last_status=304, last_error=None, consecutive_failures=0,
            last_polled_at=now, last_success_at=now, next_poll_at=now + 300, etag='"x"'))
        keys, _links = await timed("seen (50 entries)", store.seen(fid, page))
        assert len(keys) == len(known), (len(keys), len(known))
        ids = await timed("record_poll (1 new)", store.record_poll(
            fid, [NewPost(new, f"New post {newest} {new.link}")], now, last_status=200,
            etag=f'"{newest}"', next_poll_at=now + 300, last_polled_at=now))
        await timed("due_posts", store.due_posts(now, 4))
        await timed("next_due_at", store.next_due_at())
        await timed("post_counts", store.post_counts())
        await timed("pending count (proposed)", store._fetchone(PENDING_COUNT))
        await timed("sent_since (24 h)", store.sent_since(now - 86400))
        if ids:  # leave it as the dispatcher would: sent
            for post in (await store.claim_due(now, 1)).claimed:
                await store.mark_sent(post, str(k), now)
    await store.close()
    with sqlite3.connect(path) as conn:  # leave the history as seeded
        conn.execute("DELETE FROM posts WHERE entry_id IN "
                     "(SELECT id FROM entries WHERE entry_key LIKE '%/new/%')")
        conn.execute("DELETE FROM entries WHERE entry_key LIKE '%/new/%'")
    return {name: {"wall_ms": statistics.median(v) * 1000, "cpu_ms": cpu[name] / len(v) * 1000}
            for name, v in wall.items()}


CACHE_PRAGMAS = ("PRAGMA cache_size = -32768",)  # 32 MiB
# proposed for Dispatcher._dispatch_due's gauge: O(pending), not O(history)
PENDING_COUNT = "SELECT COUNT(*) FROM posts WHERE state = 'pending'"

PLANS = {
    "seen: ids": "SELECT entry_key FROM entries WHERE feed_id = ? AND entry_key IN (?, ?)",
    "seen: links": "SELECT link FROM entries WHERE link IN (?, ?)",
    "record_poll: insert": "INSERT OR IGNORE INTO entries (feed_id, entry_key, link, title, "
                           "published_at, first_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
    "update_feed": "UPDATE feeds SET last_status = ? WHERE id = ?",
    "due_posts": "SELECT * FROM posts WHERE state = 'pending' AND next_attempt_at <= ? "
                 "ORDER BY id LIMIT ?",
    "next_due_at": "SELECT MIN(next_attempt_at) FROM posts WHERE state = 'pending'",
    "post_counts": "SELECT state, COUNT(*) FROM posts GROUP BY state",
    "pending count (proposed)": PENDING_COUNT,
    "sent_since": "SELECT sent_at FROM posts WHERE sent_at >= ? AND tweet_id IS NOT NULL "
                  "ORDER BY sent_at",
}


def plans(path: str, only: tuple[str, ...] = ()) -> dict[str, str]:
    conn = sqlite3.connect(path)
    out = {}
    for name, sql in PLANS.items():
        if only and name not in only:
            continue
        n = sql.count("?")
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, [1] * n).fetchall()
        out[name] = "; ".join(r[-1] for r in rows) or "(an insert: no lookup plan)"
    conn.close()
    return out


async def child(a: dict) -> dict[str, Any]:
    from bot.store import Store

    path = a["db"]
    store = await Store.open(path)  # the real schema
    await store.close()
    now = time.time()
    out: dict[str, Any] = {}
    seeded = 0
    for label, size in (("small", a["small"]), ("large", a["large"])):
        secs = seed(path, a["feeds"], seeded, size, now)
        seeded = size
        out[label] = {"entries": size, "seed_s": secs,
                      "db_mib": os.path.getsize(path) / 2**20,  # noqa: ASYNC240
                      "ops": await measure(path, a["feeds"], size, a["polls"])}
    out["plans"] = plans(path)
    # candidate: a page cache that holds the indexes' upper levels (default: 2 MiB)
    out["large_cache"] = {"pragmas": CACHE_PRAGMAS, "ops": await measure(
        path, a["feeds"], seeded, a["polls"], CACHE_PRAGMAS)}
    # The bot never runs ANALYZE; an operator's (or PRAGMA optimize's) would change plans:
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")
    out["analyzed_plans"] = plans(path, ("due_posts", "next_due_at"))
    out["analyzed_ops"] = await measure(path, a["feeds"], seeded, max(20, a["polls"] // 10))
    return out


def run(quick: bool = False) -> dict[str, Any]:
    p = QUICK if quick else FULL
    log_line(f"\n== history: {p['small']:,} then {p['large']:,} stored entries (each with a "
             f"sent post) over {p['feeds']:,} feeds; {p['polls']} polls each "
             f"(load {load_average()})")
    tmp = Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        r = run_child("bench.history", dict(p, db=str(tmp / "history.sqlite3")), 900)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    small, large = r["small"], r["large"]
    for label in ("small", "large"):
        d = r[label]
        log_line(f"  {d['entries']:>9,} entries: seeded in {fmt(d['seed_s'], 1)} s, "
                 f"database {fmt(d['db_mib'], 0)} MiB")
    ratios = {}
    log_line(f"  {'operation':22} {'median wall ms':>26} {'CPU ms':>22}   ratio (wall)")
    for op, s in small["ops"].items():
        g = large["ops"][op]
        ratios[op] = g["wall_ms"] / s["wall_ms"]
        log_line(f"  {op:22} {fmt(s['wall_ms'], 3):>10} -> {fmt(g['wall_ms'], 3):>10}   "
                 f"{fmt(s['cpu_ms'], 3):>8} -> {fmt(g['cpu_ms'], 3):>8}   "
                 f"{fmt(ratios[op])}x")
    poll_ops = ("update_feed (304)", "seen (50 entries)", "record_poll (1 new)")
    poll_small = sum(small["ops"][o]["wall_ms"] for o in poll_ops)
    poll_large = sum(large["ops"][o]["wall_ms"] for o in poll_ops)
    log_line("  query plans:")
    for name, plan in r["plans"].items():
        log_line(f"    {name:20} {plan}")
    lc = r["large_cache"]["ops"]
    poll_cache = sum(lc[o]["wall_ms"] for o in poll_ops)
    log_line(f"  with {'; '.join(r['large_cache']['pragmas'])} on the bot's connection: a poll's "
             f"database work at {large['entries']:,} entries {fmt(poll_cache, 3)} ms, "
             f"{fmt(poll_cache / poll_small)}x the small database's; "
             + ", ".join(f"{o} {fmt(lc[o]['wall_ms'], 3)} ms" for o in poll_ops))
    an = r["analyzed_ops"]
    log_line(f"  after ANALYZE (the bot never runs it; PRAGMA optimize would): due_posts "
             f"{fmt(an['due_posts']['wall_ms'], 3)} ms "
             f"({fmt(an['due_posts']['wall_ms'] / large['ops']['due_posts']['wall_ms'], 1)}x "
             f"the unanalyzed figure), plan: {r['analyzed_plans']['due_posts']}")
    log_line(f"  => a poll's database work {fmt(poll_small, 3)} ms -> {fmt(poll_large, 3)} ms: "
             f"{fmt(poll_large / poll_small)}x (target ~1.0); dispatcher post_counts "
             f"{fmt(ratios['post_counts'], 1)}x")
    r["summary"] = {"poll_ratio": poll_large / poll_small, "op_ratios": ratios,
                    "poll_ratio_with_cache": poll_cache / poll_small}
    return r


def main() -> None:
    module_main(child, run)


if __name__ == "__main__":
    main()
