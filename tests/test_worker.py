"""The worker in this process: the per-feed schedule against changes made from outside."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp import web

from bot.config import Settings
from bot.store import Store
from bot.twitter import DryRunClient
from bot.worker import Worker
from tests.conftest import sqlite_rows
from tests.fakes.feed_server import FeedServer


@pytest.mark.parametrize("change", ["pause", "remove"])
async def test_a_feed_paused_or_removed_during_its_poll_is_no_longer_polled(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    monkeypatch.setattr("bot.worker.FEED_REFRESH_INTERVAL", 0.2)
    blog = feed_server.add_blog("/feed.xml", "Blog")
    blog.publish("Hello")
    slow = asyncio.Event()

    async def answer(request: web.Request) -> web.StreamResponse:
        if slow.is_set():
            await asyncio.sleep(1.0)  # the poll is still running when the operator acts
        return await blog.handle(request)

    feed_server.set_handler("/feed.xml", answer)
    db = tmp_path / "bot.sqlite3"
    settings = Settings.from_env({"FEED_URLS": blog.url, "DRY_RUN": "1", "POLL_INTERVAL": "0.3",
                                  "DATABASE_PATH": str(db)})
    worker = Worker(settings, poster=DryRunClient())
    await worker.start()
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):
            while feed_server.hits["/feed.xml"] < 2:
                await asyncio.sleep(0.05)
        slow.set()
        async with asyncio.timeout(10):  # a slow poll has started
            while not worker._polling:
                await asyncio.sleep(0.01)
        operator = await Store.open(str(db))  # what `feeds pause` / `feeds remove` do
        try:
            flag = {"paused": 1} if change == "pause" else {"active": 0}
            assert await operator.set_feed_flag(blog.url, **flag)
        finally:
            await operator.close()
        async with asyncio.timeout(10):
            while worker._polling:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the refresh runs at least twice meanwhile
        hits = feed_server.hits["/feed.xml"]
        await asyncio.sleep(1.5)  # five poll intervals
        assert feed_server.hits["/feed.xml"] == hits, "the paused feed is still polled"
        assert worker.feeds == {}
    finally:
        worker.stop()
        await running
        await worker.close()


async def test_a_restart_with_a_shorter_poll_interval_takes_effect_at_once(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    blog = feed_server.add_blog("/feed.xml", "Blog")
    blog.publish("Hello")
    db = tmp_path / "bot.sqlite3"
    env = {"FEED_URLS": blog.url, "DRY_RUN": "1", "DATABASE_PATH": str(db)}
    slow = Worker(Settings.from_env({**env, "POLL_INTERVAL": "1h"}), poster=DryRunClient())
    await slow.start()
    try:
        await slow.run_once(drain_timeout=5)
    finally:
        await slow.close()
    (stored,) = sqlite_rows(db, "SELECT next_poll_at FROM feeds")
    quick = Worker(Settings.from_env({**env, "POLL_INTERVAL": "5"}), poster=DryRunClient())
    await quick.start()
    try:
        (feed,) = quick.feeds.values()
        assert stored[0] > time.time() + 3000  # the hourly schedule it was left with
        assert feed.next_poll_at <= time.time() + 5  # polled within the new interval
    finally:
        await quick.close()
