"""End to end: the real service as a subprocess, a loopback blog, a loopback fake X."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import NO_SHARED, SECRETS, SHARED_FEEDS, BotProcess, bot_env, sqlite_rows
from tests.fakes.fake_x import FakeX
from tests.fakes.feed_server import FeedServer


async def wait_for_hits(server: FeedServer, path: str, n: int, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while server.hits[path] < n:
            await asyncio.sleep(0.05)


async def test_first_poll_baseline_then_each_new_article_once_oldest_first(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    blog = feed_server.add_blog("/feed.xml", "Example blog")
    for i in range(3):
        blog.publish(f"Old post {i}")
    env = bot_env(db, [blog.url], fake_x, MAX_CONCURRENT_POSTS=1)

    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined .* entries=3 tweeting=0")
    await wait_for_hits(feed_server, "/feed.xml", 3)
    assert fake_x.ledger == [], "the first poll must tweet nothing"

    new = [blog.publish(f"New post {c}") for c in "ABC"]
    tweets = await fake_x.wait_for_tweets(3, timeout=15)
    expected = [f"New post {c} {a.link}" for c, a in zip("ABC", new, strict=True)]
    assert [t.text for t in tweets] == expected

    await asyncio.sleep(2.5)  # more polls: nothing is tweeted twice
    assert len(fake_x.ledger) == 3

    status, health = await bot.healthz()
    assert status == 200
    assert health["feeds"]["total"] == 1  # type: ignore[index]
    assert health["pending_posts"] == 0
    assert health["dry_run"] is False
    assert health["last_successful_poll"]

    assert await bot.stop() == 0
    rows = sqlite_rows(db, "SELECT state, tweet_id FROM posts ORDER BY id")
    assert [r[0] for r in rows] == ["sent"] * 3
    assert [r[1] for r in rows] == [t.id for t in tweets]

    # a restart tweets nothing
    again = await BotProcess(env, tmp_path).start()
    bots.append(again)
    hits = feed_server.hits["/feed.xml"]
    await wait_for_hits(feed_server, "/feed.xml", hits + 2)
    await asyncio.sleep(0.5)
    assert len(fake_x.ledger) == 3
    assert await again.stop() == 0
    for secret in SECRETS:
        assert secret not in bot.output + again.output
        assert secret.encode() not in db.read_bytes()


async def test_slow_x_never_holds_up_polling_and_posts_go_out_concurrently(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    busy = feed_server.add_blog("/busy.xml", "Busy blog")
    quiet = feed_server.add_blog("/quiet.xml", "Quiet blog")
    busy.publish("First")
    quiet.publish("Only")
    fake_x.delay = 3.0
    env = bot_env(tmp_path / "bot.sqlite3", [busy.url, quiet.url], fake_x,
                  MAX_CONCURRENT_POSTS=10)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined", count=2)

    for i in range(10):
        busy.publish(f"Burst article {i}")
    started = time.monotonic()
    tweets = await fake_x.wait_for_tweets(10, timeout=20)
    elapsed = time.monotonic() - started
    window = [t for t in feed_server.hit_times["/quiet.xml"] if t >= started]

    assert sorted(t.text for t in tweets) == sorted(
        f"Burst article {i} {a.link}" for i, a in enumerate(busy.articles[1:]))
    assert fake_x.max_in_flight == 10, "ten posts should be in flight at once"
    assert elapsed < 9, f"ten 3-second posts took {elapsed:.1f}s: they were not concurrent"
    # the quiet feed kept its 1-second cadence while X was answering slowly
    assert len(window) >= int(elapsed) - 1, (window, elapsed)
    gaps = [b - a for a, b in itertools.pairwise(window)]
    assert max(gaps, default=0) < 2.0, gaps
    assert await bot.stop() == 0


async def test_sigterm_exits_0_and_leaves_unposted_work_pending(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    blog = feed_server.add_blog("/feed.xml")
    blog.publish("Seen at start")
    fake_x.delay = 60.0  # X never answers in time
    env = bot_env(db, [blog.url], fake_x, SHUTDOWN_GRACE=1)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined")
    blog.publish("Will not make it")
    blog.publish("Nor this one")
    await bot.wait_for(r"feed_polled .* new=2")
    deadline = time.monotonic() + 10
    while fake_x.in_flight < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert fake_x.in_flight == 2

    started = time.monotonic()
    assert await bot.stop() == 0
    assert time.monotonic() - started < 8
    assert sqlite_rows(db, "SELECT state FROM posts") == [("pending",), ("pending",)]
    assert fake_x.ledger == []

    # the next start sends them
    fake_x.delay = 0
    again = await BotProcess(env, tmp_path).start()
    bots.append(again)
    tweets = await fake_x.wait_for_tweets(2, timeout=15)
    assert [t.text.split(" http")[0] for t in tweets] == ["Will not make it", "Nor this one"]
    assert await again.stop() == 0


async def test_dry_run_prints_tweets_and_backfill_tweets_the_newest(
    tmp_path: Path, feed_server: FeedServer, bots: list[BotProcess]
) -> None:
    blog = feed_server.add_blog("/feed.xml", "Dry blog")
    for i in range(5):
        blog.publish(f"Post number {i}")
    env = bot_env(tmp_path / "bot.sqlite3", [blog.url], None, DRY_RUN=1, BACKFILL=2)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"would tweet: Post number 3 ")
    await bot.wait_for(r"would tweet: Post number 4 ")
    _, health = await bot.healthz()
    assert health["dry_run"] is True
    assert await bot.stop() == 0
    assert "would tweet: Post number 2" not in bot.output


async def test_bad_settings_exit_2_naming_the_variable(tmp_path: Path) -> None:
    async def run(env: dict[str, str]) -> tuple[int, str]:
        bot = await BotProcess(env, tmp_path).start()
        rc = await bot.wait(30)
        return rc, bot.output

    db = str(tmp_path / "x.sqlite3")
    rc, out = await run({"DATABASE_PATH": db, "FEED_URLS": "http://127.0.0.1:9/f",
                         "DRY_RUN": "1", "POLL_INTERVAL": "soon"})
    assert rc == 2 and "POLL_INTERVAL='soon'" in out and "seconds" in out

    rc, out = await run({"DATABASE_PATH": db, "FEED_URLS": "http://127.0.0.1:9/f",
                         "TWITTER_API_KEY": "k"})
    assert rc == 2
    assert "TWITTER_API_SECRET" in out and "DRY_RUN=1" in out
    assert "TWITTER_API_KEY," not in out  # the one that is set is not named missing

    rc, out = await run({"DATABASE_PATH": db, "DRY_RUN": "1"})
    assert rc == 2 and "FEED_URLS" in out and "feeds add" in out

    rc, out = await run({"DATABASE_PATH": db, "DRY_RUN": "1", "FEED_URLS": "ftp://x/y"})
    assert rc == 2 and "ftp://x/y" in out


async def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    bot = await BotProcess({"DATABASE_PATH": str(db), "FEED_URLS": "http://127.0.0.1:9/f",
                            "DRY_RUN": "1"}, tmp_path).start()
    rc = await bot.wait(30)
    assert rc != 0
    assert "schema version 999" in bot.output and "newer" in bot.output
    assert sqlite_rows(db, "PRAGMA user_version") == [(999,)]


async def test_sigint_is_a_clean_stop_too(
    tmp_path: Path, feed_server: FeedServer, bots: list[BotProcess]
) -> None:
    blog = feed_server.add_blog("/feed.xml")
    bot = await BotProcess(bot_env(tmp_path / "db.sqlite3", [blog.url], None, DRY_RUN=1),
                           tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined")
    bot.signal(signal.SIGINT)
    assert await bot.wait() == 0
    assert "Traceback" not in bot.output, bot.output
    assert sys.executable  # the bot ran under this interpreter


@pytest.mark.skipif(not SHARED_FEEDS.is_dir(), reason=NO_SHARED)
@pytest.mark.parametrize("pair", [("DaringFireball.atom", "DaringFireball.json"),
                                  ("allthis.atom", "allthis.json")])
async def test_one_blog_as_atom_and_as_json_feed_tweets_each_article_once(
    tmp_path: Path, feed_server: FeedServer, bots: list[BotProcess], pair: tuple[str, str]
) -> None:
    for name in pair:
        feed_server.serve_bytes(f"/{name}", (SHARED_FEEDS / "real" / name).read_bytes(),
                                content_type="application/octet-stream")
    env = bot_env(tmp_path / "bot.sqlite3", [feed_server.url(f"/{n}") for n in pair], None,
                  DRY_RUN=1, BACKFILL=1000)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined", count=2)
    await asyncio.sleep(1.5)
    assert await bot.stop() == 0
    tweets = [line.split("would tweet: ", 1)[1] for line in bot.lines if "would tweet: " in line]
    links = [t.rsplit(" ", 1)[-1] for t in tweets]
    articles = {"DaringFireball.atom": 48, "allthis.atom": 12}[pair[0]]
    assert len(tweets) == articles, "\n".join(tweets)
    assert len(set(links)) == articles


async def test_parsing_in_worker_processes_gives_the_same_tweets(
    tmp_path: Path, feed_server: FeedServer, bots: list[BotProcess]
) -> None:
    blog = feed_server.add_blog("/feed.xml", "Process blog")
    for i in range(4):
        blog.publish(f"Parsed elsewhere {i}", categories=("asyncio",))
    env = bot_env(tmp_path / "bot.sqlite3", [blog.url], None, DRY_RUN=1, BACKFILL=2,
                  PARSE_PROCESSES=2, TWEET_TEMPLATE="{title} {url} {hashtags}")
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"would tweet: Parsed elsewhere 3 ")
    new = blog.publish("Published after the baseline")
    await bot.wait_for(rf"would tweet: Published after the baseline {re.escape(new.link)}")
    assert await bot.stop() == 0
    tweets = [line.split("would tweet: ", 1)[1] for line in bot.lines if "would tweet: " in line]
    assert tweets == [f"Parsed elsewhere {i} {blog.articles[i].link} #asyncio" for i in (2, 3)] \
        + [f"Published after the baseline {new.link}"]
    assert "Traceback" not in bot.output


async def test_a_304s_new_validators_are_used_next_and_survive_a_restart(
    tmp_path: Path, feed_server: FeedServer, bots: list[BotProcess]
) -> None:
    """A 304 may carry a new ETag; the bot sends the newest one back, and after a restart
    too (the 304 bookkeeping is written in batches, only what changed)."""
    from aiohttp import web

    blog = feed_server.add_blog("/blog.xml")
    blog.publish("Only post")
    body = blog.render()
    given: list[str] = []
    sent: list[str | None] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        sent.append(request.headers.get("If-None-Match"))
        etag = f'"v{len(given) + 1}"'
        status = 304 if given and sent[-1] == given[-1] else 200
        given.append(etag)
        if status == 304:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, headers={"ETag": etag},
                            content_type="application/rss+xml")

    feed_server.set_handler("/etag.xml", handler)
    db = tmp_path / "bot.sqlite3"
    env = bot_env(db, [feed_server.url("/etag.xml")], None, DRY_RUN=1)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    await wait_for_hits(feed_server, "/etag.xml", 4)
    assert await bot.stop() == 0
    # one 200, then each request sent the ETag of the answer before it
    assert sent[0] is None and sent[1:] == given[:len(sent) - 1], (sent, given)
    assert sqlite_rows(db, "SELECT etag, last_status, consecutive_failures FROM feeds") == [
        (given[-1], 304, 0)]

    hits = feed_server.hits["/etag.xml"]
    again = await BotProcess(env, tmp_path).start()
    bots.append(again)
    await wait_for_hits(feed_server, "/etag.xml", hits + 1)
    assert await again.stop() == 0
    assert sent[hits] == given[hits - 1], "after a restart the newest ETag is sent"
