"""End to end: the real service polls one loopback server playing every hostile role of
issue 4 at once, beside good blogs whose new articles must still be tweeted on time, while
its peak memory (RSS, with children) is sampled."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import random
import re
import socket
import time
import zlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import psutil
from aiohttp import web

from bot.feeds import MAX_REDIRECTS
from tests.conftest import BotProcess, bot_env, dumps, sqlite_rows
from tests.fakes.fake_x import FakeX
from tests.fakes.feed_server import FeedServer

INTERVAL = 2.0  # POLL_INTERVAL
TIMEOUT = 3.0  # FEED_TIMEOUT
CAP = 2 * 1024 * 1024  # MAX_FEED_BYTES
RSS_LIMIT = 150 * 1024 * 1024

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title><link>http://laughs.example/</link>
<item><title>&lol9;</title><link>http://laughs.example/1</link></item>
</channel></rss>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>XXE &xxe;</title><link>http://xxe.example/</link>
<item><title>Leak &xxe;</title><link>http://xxe.example/1</link>
<description>&xxe;</description></item>
</channel></rss>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE rss SYSTEM "file:///etc/passwd">
<rss version="2.0"><channel><title>External DTD</title><link>http://dtd.example/</link>
<item><title>Harmless item</title><link>http://dtd.example/1</link></item>
</channel></rss>
"""

HTML_PAGE = b"""<!doctype html>
<html><head><title>Welcome to my blog</title></head>
<body><h1>My blog</h1><p>The feed moved; this is the home page.</p></body></html>
"""

GARBAGE = random.Random(4).randbytes(8192)

# Cut inside the channel header, before the first <item>. (Cut inside an item, the parser
# currently returns the partial entry instead of an error: see test_truncated_mid_item.)
TRUNCATED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
             b"<title>Truncated</title><link>http://trunc.example/</li")


@functools.cache
def gzip_bomb(size: int = 1 << 30) -> bytes:
    """``size`` zero bytes as one gzip member (1 GiB -> ~1 MB), built 1 MiB at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(size >> 20)]
    parts.append(compressor.flush())
    return b"".join(parts)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def never_answers(request: web.Request) -> web.StreamResponse:
    await asyncio.Event().wait()  # until the server shuts down
    raise AssertionError("unreachable")


def streaming(chunk: bytes, pause: float) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the bot hung up, as it should
            for _ in range(1_000_000):
                await response.write(chunk)
                await asyncio.sleep(pause)
        return response

    return handler


def status(code: int, **headers: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text=f"status {code}\n", headers=headers)

    return handler


def redirect(code: int, to: str) -> Handler:
    return status(code, Location=to)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PeakRSS:
    """Samples the resident memory of a process and its children every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            total = self.process.memory_info().rss
            for child in self.process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            self.peak = max(self.peak, total)
            self.samples += 1

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.every)

    def start(self) -> PeakRSS:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def until(condition: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


def read_all(directory: Path, pattern: str) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.glob(pattern)))


def iso(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S%z").timestamp()


async def feed_states(bot: BotProcess) -> dict[str, dict[str, object]]:
    code, health = await bot.healthz()
    assert code == 200, health
    states: list[dict[str, object]] = health["feed_states"]  # type: ignore[assignment]
    return {str(s["url"]): s for s in states}


async def test_hostile_feeds_do_not_hold_up_good_ones(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    server = feed_server
    good_one = server.add_blog("/good-one.xml", "Good one")
    good_two = server.add_blog("/good-two.xml", "Good two")
    moved_blog = server.add_blog("/new-home.xml", "Moved blog")
    for blog in (good_one, good_two, moved_blog):
        blog.publish(f"{blog.title}: older post")

    hostile: dict[str, str] = {}  # path or URL -> what last_error must say

    def role(path: str, handler: Handler | None, reason: str) -> None:
        if handler is not None:
            server.set_handler(path, handler)
        hostile[path] = reason

    role("/never.xml", never_answers, "timed out")
    role("/trickle.xml", streaming(b"<", 1.0), "timed out")
    role("/endless.xml", streaming(b"<item>" * 10_000, 0), "too large")
    bomb = gzip_bomb()
    assert len(bomb) < 2 << 20  # compressed: well under the cap; inflated: 1 GiB
    server.serve_bytes("/bomb.xml", bomb, headers={"Content-Encoding": "gzip"})
    role("/bomb.xml", None, "too large")
    server.serve_bytes("/laughs.xml", BILLION_LAUGHS)
    role("/laughs.xml", None, "not a feed")
    server.serve_bytes("/xxe.xml", EXTERNAL_ENTITY)
    role("/xxe.xml", None, "not a feed")
    server.serve_bytes("/html.xml", HTML_PAGE, content_type="text/html")
    role("/html.xml", None, "not a feed")
    server.serve_bytes("/garbage.xml", GARBAGE, content_type="application/octet-stream")
    role("/garbage.xml", None, "not a feed")
    server.serve_bytes("/truncated.xml", TRUNCATED)
    role("/truncated.xml", None, "not a feed")
    role("/missing.xml", status(404), "HTTP 404")
    role("/broken.xml", status(500), "HTTP 500")
    role("/gone.xml", status(410), "410")
    role("/loop-a.xml", redirect(301, "/loop-b.xml"), "redirect")
    server.set_handler("/loop-b.xml", redirect(301, "/loop-a.xml"))
    role("/limited.xml", status(429, **{"Retry-After": "120"}), "HTTP 429")
    refused = f"http://127.0.0.1:{free_port()}/feed.xml"
    hostile[refused] = "connection refused"
    server.set_handler("/moved.xml", redirect(301, "/new-home.xml"))
    server.serve_bytes("/external-dtd.xml", EXTERNAL_DTD)  # harmless: read, never fetched

    def url(key: str) -> str:
        return key if key.startswith("http") else server.url(key)

    good = [good_one.url, good_two.url]
    feeds = [*good, *(url(k) for k in hostile), server.url("/moved.xml"),
             server.url("/external-dtd.xml")]
    db = tmp_path / "bot.sqlite3"
    env = bot_env(db, feeds, fake_x, POLL_INTERVAL=INTERVAL, FEED_TIMEOUT=TIMEOUT,
                  MAX_FEED_BYTES=CAP)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    assert bot.proc is not None
    memory = PeakRSS(bot.proc.pid).start()
    try:
        for feed in (*good, server.url("/moved.xml"), server.url("/external-dtd.xml")):
            await bot.wait_for(rf"feed_baselined url={re.escape(feed)} ", timeout=30)

        # every hostile feed has failed at least once before the good ones get news
        async with asyncio.timeout(30):
            while True:
                states = await feed_states(bot)
                failed = {k for k in hostile
                          if (states.get(url(k)) or {}).get("consecutive_failures")}
                if failed == set(hostile):
                    break
                await asyncio.sleep(0.2)

        # The good blogs share their host with the hostile feeds, so with two fetches per
        # host they may queue behind the two that hang until FEED_TIMEOUT: that is the
        # price of MAX_FETCHES_PER_HOST=2, bounded by one timeout.
        published = time.monotonic()
        news = [good_one.publish("Good one: fresh news"), good_two.publish("Good two: fresh news"),
                moved_blog.publish("Moved blog: fresh news")]
        tweets = await fake_x.wait_for_tweets(3, timeout=2 * INTERVAL + 10)
        latency = time.monotonic() - published
        assert sorted(t.text for t in tweets) == sorted(f"{a.title} {a.link}" for a in news)
        assert latency < 2 * INTERVAL + 3, f"new articles took {latency:.1f} s to be tweeted"
        gone_state = (await feed_states(bot))[url("/gone.xml")]  # before any feed refresh

        # backoff: give the 404 and 500 feeds time for four polls (gaps of 2, 4, 8 s)
        await until(lambda: min(server.hits["/missing.xml"], server.hits["/broken.xml"]) >= 4,
                    timeout=45)
        states = await feed_states(bot)
        await asyncio.sleep(0.5)
        memory.sample()
    finally:
        await memory.stop()
    assert await bot.stop() == 0
    output = bot.output
    print(f"\npeak RSS of the bot process: {memory.peak / 2**20:.1f} MiB "
          f"({memory.samples} samples), new articles tweeted after {latency:.1f} s")
    assert memory.samples > 50
    assert memory.peak < RSS_LIMIT, f"peak RSS {memory.peak / 2**20:.1f} MiB"

    # each hostile feed: its own state, with a clear reason
    for key, reason in hostile.items():
        state = gone_state if key == "/gone.xml" else states[url(key)]
        assert reason in str(state["last_error"]), (key, dumps(state))
        assert int(state["consecutive_failures"]) >= 1, (key, state)  # type: ignore[call-overload]
        assert state["last_polled_at"] and state["next_poll_at"], (key, state)
    expected_status = {"/missing.xml": 404, "/broken.xml": 500, "/limited.xml": 429,
                       "/endless.xml": 200, "/bomb.xml": 200, "/never.xml": None,
                       "/trickle.xml": None, refused: None, "/loop-a.xml": None}
    for key, code in expected_status.items():
        assert states[url(key)]["last_status"] == code, (key, dumps(states[url(key)]))
    assert gone_state["state"] == "gone" and gone_state["last_status"] == 410
    for feed in good:
        assert states[feed]["last_error"] is None and states[feed]["consecutive_failures"] == 0

    # 410: said once at WARNING, never polled again
    assert server.hits["/gone.xml"] == 1
    gone_lines = [line for line in output.splitlines() if "feed_gone" in line]
    assert len(gone_lines) == 1 and "WARNING" in gone_lines[0], gone_lines
    assert sqlite_rows(db, f"SELECT gone FROM feeds WHERE url = '{url('/gone.xml')}'") == [(1,)]

    # 429 with Retry-After: 120: not asked again, and the next poll is two minutes out
    assert server.hits["/limited.xml"] == 1
    limited = states[url("/limited.xml")]
    wait = iso(str(limited["next_poll_at"])) - iso(str(limited["last_polled_at"]))
    assert 118 <= wait <= 122, dumps(limited)

    # 404/500: per-feed backoff doubling from the interval (2, 4, 8 s)
    for path in ("/missing.xml", "/broken.xml"):
        times = server.hit_times[path]
        gaps = [b - a for a, b in itertools.pairwise(times)][:3]
        for i, gap in enumerate(gaps):
            expected = INTERVAL * 2**i
            assert expected - 0.5 <= gap <= expected + TIMEOUT + 1, (path, gaps)
        assert int(states[url(path)]["consecutive_failures"]) >= 3  # type: ignore[call-overload]

    # timeouts are the total timeout, and the feeds that time out back off too
    assert server.hits["/never.xml"] <= 5 and server.hits["/trickle.xml"] <= 5

    # 301: the new URL replaced the old one; a loop is an error, not followed for ever
    moved = dict(sqlite_rows(db, "SELECT url, fetch_url FROM feeds"))
    assert moved[server.url("/moved.xml")] == moved_blog.url  # fetched there from now on
    assert "feed_moved" in output
    loops = int(states[url("/loop-a.xml")]["consecutive_failures"])  # type: ignore[call-overload]
    assert server.hits["/loop-a.xml"] + server.hits["/loop-b.xml"] <= MAX_REDIRECTS * (loops + 1)

    # no entity was expanded, no file was read
    db_bytes = read_all(tmp_path, "bot.sqlite3*")  # with the WAL, if any
    for tweet in fake_x.ledger:
        assert "root:" not in tweet.text
    assert b"root:" not in db_bytes and b"lollollol" not in db_bytes
    assert b"root:x:0:0" not in output.encode()
    assert "Traceback" not in output and "poll_crashed" not in output, output[-3000:]


# --------------------------------------------------------------------------- known bugs
# Regressions found while writing the hostile-feed test.


async def test_truncated_mid_item(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    """A body cut inside an item (a close-delimited response cut short) must be an error,
    not a new entry: today the cut entry is tweeted as a bare home-page link, and the
    complete one a poll later a second time."""
    blog = feed_server.add_blog("/cut.xml", "Cut blog")
    blog.publish("Old post")
    cut = {"on": False}

    async def handler(request: web.Request) -> web.StreamResponse:
        body = blog.render()
        if cut["on"]:
            body = body[: body.index(b"<item>") + len(b"<item><title>Brand new")]
        return web.Response(body=body, content_type="application/rss+xml")

    feed_server.set_handler("/cut.xml", handler)
    env = bot_env(tmp_path / "bot.sqlite3", [blog.url], fake_x, POLL_INTERVAL=1)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined")
    new = blog.publish("Brand new post")
    cut["on"] = True
    hits = feed_server.hits["/cut.xml"]
    await until(lambda: feed_server.hits["/cut.xml"] >= hits + 2, timeout=15)
    cut["on"] = False
    await fake_x.wait_for_tweets(1, timeout=10)
    await asyncio.sleep(1.5)
    assert await bot.stop() == 0
    assert [t.text for t in fake_x.ledger] == [f"Brand new post {new.link}"]
    assert "not a feed" in bot.output


async def test_a_moved_feed_stays_moved_after_a_restart(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    """After a 301 is remembered, a restart with the same FEED_URLS keeps polling the new URL
    as the same feed: nothing is baselined again, so what was published while the bot was
    down is tweeted, and the move is logged once, not on every poll."""
    blog = feed_server.add_blog("/new-home.xml", "Moved blog")
    blog.publish("Old post")
    feed_server.set_handler("/old-home.xml", redirect(301, "/new-home.xml"))
    db = tmp_path / "bot.sqlite3"
    env = bot_env(db, [feed_server.url("/old-home.xml")], fake_x, POLL_INTERVAL=1)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined")
    assert await bot.stop() == 0
    new = blog.publish("Published while the bot was down")
    again = await BotProcess(env, tmp_path).start()
    bots.append(again)
    try:
        tweets = await fake_x.wait_for_tweets(1, timeout=8)
    finally:
        assert await again.stop() == 0
    assert [t.text for t in tweets] == [f"{new.title} {new.link}"]
    assert again.output.count("feed_moved") <= 1
