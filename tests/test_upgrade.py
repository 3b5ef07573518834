"""The upgrade to destinations (issue 15, migration 0005), as an operator lives it: the database
the previous version wrote (schema 4: one post per article, all for X), then the new bot,
``python -m bot run``, started on it with X configured, and in a second case X and a Mastodon
account configured for the first time.

What must hold: the database is migrated; every post keeps its history (id, state, attempts,
tweet id, error, times) as a post for the destination ``x``; nothing already tweeted is tweeted
again (the fake X gets the pending posts only, and only after the 429 wall the old version
recorded); a failed post stays failed; and a newly configured Mastodon gets the articles found
after the upgrade, not a flood of the old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

import bot.store
from bot.schema import migration_scripts, migrations_directory
from bot.store import Store
from tests.conftest import BotProcess, bot_env, sqlite_rows
from tests.fakes.fake_mastodon import FakeMastodon
from tests.fakes.fake_x import FakeX
from tests.fakes.feed_server import Article, FeedServer
from tests.fleet import MASTODON_TOKEN, bot_process, mastodon_env

PREVIOUS_SCHEMA = 4
WALL = 2.5  # seconds from the upgrade that the old version's 429 wall still stands
POSTS_V4 = ("id", "entry_id", "text", "state", "attempts", "next_attempt_at", "last_error",
            "tweet_id", "created_at", "sent_at")


async def previous_version_database(path: Path, tmp_path: Path) -> None:
    """An empty database as the previous version made it: migrations 0001-0004 only."""
    old = tmp_path / "migrations-v4"
    old.mkdir()
    for number, name, _ in migration_scripts(migrations_directory()):
        if number <= PREVIOUS_SCHEMA:
            shutil.copy(Path(str(migrations_directory())) / name, old / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bot.store, "MIGRATIONS_DIR", old)
        store = await Store.open(str(path))
        try:
            assert await store.user_version() == PREVIOUS_SCHEMA
        finally:
            await store.close()


def fill(path: Path, feed_url: str, articles: list[Article], now: float
         ) -> dict[str, list[tuple[object, ...]]]:
    """The previous version's rows: a feed polled for a while, its articles seen, and posts in
    every state, with the 429 wall it was behind. Returns the posts by state, as written."""
    text = {a.guid: f"{a.title} {a.link}" for a in articles}
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("INSERT INTO feeds (id, url, title, origin, baselined, last_status, "
                     "last_polled_at, last_success_at, next_poll_at, created_at) "
                     "VALUES (1, ?, 'Blog', 'env', 1, 200, ?, ?, ?, ?)",
                     (feed_url, now - 60, now - 60, now - 1, now - 7 * 86400))
        for i, a in enumerate(articles, 1):
            conn.execute("INSERT INTO entries (id, feed_id, entry_key, link, title, "
                         "published_at, first_seen_at) VALUES (?, 1, ?, ?, ?, ?, ?)",
                         (i, a.guid, a.link, a.title, a.published.timestamp(),
                          now - 3600 + i))
        # entry 1: seen at the first poll (the baseline), never tweeted: no post
        posts = [
            # sent, with the tweet id X gave
            (1, 2, text[articles[1].guid], "sent", 1, 0.0, None, "1790000000000000002",
             now - 3000, now - 2990),
            # sent after a retry (the first attempt's answer was lost)
            (2, 3, text[articles[2].guid], "sent", 2, 0.0, "connection error: timeout",
             "1790000000000000003", now - 2900, now - 2800),
            # settled by X's duplicate-content 403: no tweet id
            (3, 4, text[articles[3].guid], "sent", 2, 0.0, "already on X (duplicate content)",
             None, now - 2700, now - 2600),
            # failed: X refused the text
            (4, 5, text[articles[4].guid], "failed", 1, 0.0,
             "HTTP 403: You are not permitted to perform this action.", None, now - 2500, None),
            # failed: gave up after MAX_POST_AGE
            (5, 6, text[articles[5].guid], "failed", 9, 0.0,
             "gave up after 9 attempts: HTTP 503: non-JSON body: HTML page", None,
             now - 90000, None),
            # pending after a 503, due now
            (6, 7, text[articles[6].guid], "pending", 2, now - 5, "HTTP 503: Service Unavailable",
             None, now - 600, None),
            # pending behind the 429 wall (attempt refunded)
            (7, 8, text[articles[7].guid], "pending", 0, 0.0, "HTTP 429: Too Many Requests",
             None, now - 30, None),
            # sending: the old version was stopped (killed) while X had it
            (8, 9, text[articles[8].guid], "sending", 1, 0.0, None, None, now - 20, None),
        ]
        conn.executemany(f"INSERT INTO posts ({', '.join(POSTS_V4)}) "
                         f"VALUES ({', '.join('?' * len(POSTS_V4))})", posts)
        conn.execute("INSERT INTO meta (key, value) VALUES ('gate', ?)", (json.dumps(
            {"until": now + WALL, "reason": "rate_limited",
             "detail": "HTTP 429: Too Many Requests"}),))
    by_state: dict[str, list[tuple[object, ...]]] = {}
    for row in posts:
        by_state.setdefault(str(row[3]), []).append(row)
    return by_state


@pytest.mark.parametrize("networks", [("x",), ("x", "mastodon")], ids=["x", "x+mastodon"])
async def test_the_previous_versions_database_is_migrated_keeps_its_history_and_resends_nothing(
    networks: tuple[str, ...], tmp_path: Path, feed_server: FeedServer, fake_x: FakeX,
    bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    blog = feed_server.add_blog("/feed.xml", "Blog")
    articles = [blog.publish(f"Article {i}") for i in range(1, 10)]
    await previous_version_database(db, tmp_path)
    now = time.time()
    written = fill(db, blog.url, articles, now)
    database_id = sqlite_rows(db, "SELECT value FROM meta WHERE key = 'database_id'")[0][0]
    owed = [str(r[2]) for r in written["pending"] + written["sending"]]

    async with contextlib.AsyncExitStack() as stack:
        env = bot_env(db, [blog.url], fake_x, POLL_INTERVAL="0.5")
        mastodon: FakeMastodon | None = None
        if "mastodon" in networks:
            mastodon = await stack.enter_async_context(FakeMastodon(token=MASTODON_TOKEN))
            env.update(mastodon_env(mastodon.base_url))
        bot = await bot_process(env, tmp_path).start()
        bots.append(bot)
        await bot.wait_for(r"migration_applied name=0005_destinations\.sql version=5")
        await bot.wait_for(r"feed_polled .* new=0")  # the same feed: nothing new in it

        # X gets what it was owed, once, and only after the wall the old version recorded
        tweets = await fake_x.wait_for_tweets(len(owed), timeout=WALL + 15)
        assert sorted(t.text for t in tweets) == sorted(owed)
        assert min(r.time for r in fake_x.requests) >= now + WALL - 0.1, \
            "the old version's 429 wall was not respected"
        if mastodon is not None:  # a new destination starts from now: no flood of old ones
            assert mastodon.statuses == []

        # an article found after the upgrade goes to every destination configured
        fresh = blog.publish("After the upgrade")
        await fake_x.wait_for_tweets(len(owed) + 1, timeout=15)
        if mastodon is not None:
            await mastodon.wait_for_statuses(1, timeout=15)
        await asyncio.sleep(1.5)  # more polls and dispatcher passes: nothing else may come
        assert sorted(t.text for t in fake_x.ledger) == sorted(
            [*owed, f"{fresh.title} {fresh.link}"])
        if mastodon is not None:
            assert mastodon.texts() == [f"{fresh.title} {fresh.link}"]

        status, health = await bot.healthz()
        assert status == 200, health
        assert health["database_id"] == database_id  # the same database, upgraded
        x_view = health["destinations"]["x"]  # type: ignore[index]
        assert x_view["posts"] == {"sent": 3 + len(owed) + 1, "failed": 2, "pending": 0,
                                   "sending": 0}, x_view
        assert await bot.stop() == 0

    assert sqlite_rows(db, "PRAGMA user_version") == [(5,)]
    rows = {r[0]: r for r in sqlite_rows(
        db, f"SELECT {', '.join(POSTS_V4)}, destination, post_key FROM posts")}
    # every post the old version wrote is still there, as a post for X, unchanged if settled
    for row in written["sent"] + written["failed"]:
        assert rows[row[0]][:len(POSTS_V4)] == row, (row, rows[row[0]])
        assert rows[row[0]][len(POSTS_V4)] == "x"
    by_text = {t.text: t for t in fake_x.ledger}
    for row in written["pending"] + written["sending"]:
        new = rows[row[0]]
        assert new[:3] == row[:3] and new[len(POSTS_V4)] == "x", (row, new)
        assert new[3] == "sent" and new[7] == by_text[str(row[2])].id, new
        assert new[8] == row[8], "created_at is the old version's"
    # one post per article and destination; the new article's only
    destinations = sqlite_rows(db, "SELECT e.title, p.destination FROM posts p "
                                   "JOIN entries e ON e.id = p.entry_id ORDER BY p.id")
    old_titles = {a.title for a in articles}
    assert {d for t, d in destinations if t in old_titles} == {"x"}
    assert sorted(str(d) for t, d in destinations if t == fresh.title) == sorted(networks)
    assert sqlite_rows(db, "SELECT COUNT(*) FROM posts WHERE entry_id = 1") == [(0,)]
    assert sqlite_rows(db, "SELECT COUNT(*) FROM entries") == [(len(articles) + 1,)]
    assert sqlite_rows(db, "SELECT destinations FROM feeds") == [(None,)]
