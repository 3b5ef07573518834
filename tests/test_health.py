"""/healthz, /metrics and `status` render one snapshot (bot.health): they agree on every count."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.conftest import BotProcess, bot_env
from tests.fakes.fake_x import FakeX
from tests.fakes.feed_server import FeedServer
from tests.test_cli import bot, cli_env
from tests.test_web import scrape, value


async def test_healthz_metrics_and_status_agree_on_every_count(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    ok = feed_server.add_blog("/ok.xml", "OK blog")
    ok.publish("Old")
    paused = feed_server.add_blog("/paused.xml", "Paused blog")
    paused.publish("Old")
    feed_server.serve_bytes("/failing.xml", b"oops", status=500)
    feed_server.serve_bytes("/gone.xml", b"gone", status=410)
    urls = [ok.url, paused.url, feed_server.url("/failing.xml"), feed_server.url("/gone.xml")]
    service = await BotProcess(bot_env(db, urls, fake_x), tmp_path).start()
    bots.append(service)
    await service.wait_for(r"feed_baselined .*ok.xml")
    await service.wait_for(r"feed_gone")
    await service.wait_for(r"feed_failed")
    env = cli_env(db)
    assert (await bot("feeds", "pause", paused.url, cwd=tmp_path, env=env)).rc == 0
    removed = feed_server.add_blog("/removed.xml", "Removed")
    removed.publish("x")
    assert (await bot("feeds", "add", removed.url, cwd=tmp_path, env=env)).rc == 0
    assert (await bot("feeds", "remove", removed.url, cwd=tmp_path, env=env)).rc == 0
    ok.publish("New")
    await fake_x.wait_for_tweets(1, timeout=20)
    await asyncio.sleep(1.5)  # the sent post is recorded

    expected = {"new": 0, "ok": 1, "failing": 1, "paused": 1, "gone": 1, "inactive": 1}
    async with asyncio.timeout(20):
        while True:
            _, health = await service.healthz()
            samples, _ = await scrape(service)
            metrics = {state: int(value(samples, "bot_feeds", state=state))
                       for state in expected}
            if metrics == expected and health["posts"]["sent"] == 1:  # type: ignore[index]
                break
            await asyncio.sleep(0.3)
    port = service.health_url.split(":")[2].split("/")[0]  # type: ignore[union-attr]
    status = await bot("status", cwd=tmp_path, env={**env, "HTTP_PORT": port})
    assert status.rc == 0, status

    feeds = health["feeds"]
    assert feeds == {"total": 5, **{k: v for k, v in expected.items() if v}}  # type: ignore[comparison-overlap]
    status_feeds = re.search(r"^feeds: +(\d+) \((.*)\)$", status.out, re.MULTILINE)
    assert status_feeds, status.out
    assert int(status_feeds.group(1)) == feeds["total"]  # type: ignore[index]
    assert dict((k, int(v)) for k, v in (part.split() for part in
                                         status_feeds.group(2).split(", "))) == \
        {k: v for k, v in expected.items() if v}
    posts = health["posts"]
    assert f"posts:     pending {posts['pending']}, sending {posts['sending']}, "  \
        f"sent {posts['sent']}, failed {posts['failed']}" in status.out  # type: ignore[index]
    assert value(samples, "bot_posts_pending") == health["pending_posts"]
    assert "(200 ok)" in status.out
    # what posting on X costs, in sight (X_COST_PER_POST: 0.20 by default)
    assert health["x"] == {"posts_24h": 1, "posts_30d": 1, "cost_per_post_usd": 0.2,
                           "estimated_spend_24h_usd": 0.2, "estimated_spend_30d_usd": 0.2}
    assert value(samples, "bot_destination_posts", destination="x", window="30d") == 1
    assert value(samples, "bot_estimated_spend_usd", destination="x", window="24h") == 0.2
    assert "x:         1 post in 24 h, 1 in 30 days (about $0.20 at $0.20 a post); gate open" \
        in status.out
    assert await service.stop() == 0


async def test_with_many_feeds_the_counts_come_from_sql_and_agree_with_the_rows(
    tmp_path: Path
) -> None:
    from bot.health import FEED_LIST_MAX, healthz, take
    from bot.models import FeedState
    from bot.store import Store

    store = await Store.open(str(tmp_path / "bot.sqlite3"))
    try:
        urls = [f"https://blog{i}.example.org/feed" for i in range(FEED_LIST_MAX + 50)]
        await store.sync_env_feeds(urls, 1.0)
        rows = await store.feeds()
        for i, feed in enumerate(rows):
            if i % 7 == 0:
                await store.update_feed(feed.id, consecutive_failures=2, last_error="HTTP 503")
            elif i % 11 == 0:
                await store.set_feed_flag(feed.url, paused=1)
            elif i % 13 == 0:
                await store.set_feed_flag(feed.url, gone=1)
            elif i % 2 == 0:
                store.defer_feed_update(feed.id, last_success_at=50.0 + i)  # an unwritten 304
        gate = {"open": True, "reason": "", "seconds_left": 0, "detail": "", "probing": False}
        snapshot = await take(store, gate, posting_broken=False)
        expected = {str(state): 0 for state in FeedState}
        for feed in await store.feeds():
            expected[feed.state] += 1
        assert snapshot.feeds == expected
        assert snapshot.total == len(urls)
        assert {f.state for f in snapshot.rows} == {"failing", "gone"}  # only those listed
        assert snapshot.last_successful_poll == 50.0 + max(
            i for i in range(len(urls)) if i % 2 == 0 and i % 7 and i % 11 and i % 13)
        body = healthz(snapshot, dry_run=False)
        assert "feed_states" not in body and body["feeds"]["total"] == len(urls)
    finally:
        await store.close()


def test_a_network_that_stopped_answering_is_degraded_and_broken_credentials_are_503() -> None:
    from bot.gate import DOWN_AFTER as DEGRADED_AFTER
    from bot.health import Snapshot, healthz

    def snapshot(failures: int, broken: bool = False) -> Snapshot:
        return Snapshot(feeds={}, posts={"pending": 0, "sending": 0, "sent": 0, "failed": 0},
                        rows=[], last_successful_poll=None, gate={}, posting_broken=broken,
                        destinations={"x": {"consecutive_failures": 0},
                                      "mastodon": {"consecutive_failures": failures}})

    assert (snapshot(DEGRADED_AFTER - 1).status, snapshot(0).http_status) == ("ok", 200)
    down = snapshot(DEGRADED_AFTER)
    assert (down.status, down.http_status) == ("degraded", 200)  # nothing to fix here
    assert healthz(down, dry_run=False)["degraded"] == ["mastodon"]
    broken = snapshot(DEGRADED_AFTER, broken=True)
    assert (broken.status, broken.http_status) == ("posting_broken", 503)  # act
