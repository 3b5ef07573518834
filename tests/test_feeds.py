"""The HTTP fetcher (bot.feeds.Fetcher): narrow client cases with aioresponses, then the same
promises against real loopback servers (the hostile ones a mock cannot play: trickles,
endless bodies, gzip bombs, lying Content-Length, garbage instead of HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from bot import __version__
from bot.errors import FeedFetchError, FeedGoneError
from bot.feeds import MAX_REDIRECTS, USER_AGENT, Fetcher, parse_retry_after
from tests.fakes.feed_server import FeedServer

URL = "http://blog.example.org/feed.xml"
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


class CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 predates aiohttp 3.14's required ``stream_writer`` argument."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


def mock_get(mocked: aioresponses, url: str, **kwargs: Any) -> None:
    mocked.get(url, response_class=CompatResponse, **kwargs)


def sent_headers(mocked: aioresponses, url: str = URL) -> dict[str, str]:
    from yarl import URL as YURL

    calls = mocked.requests[("GET", YURL(url))]
    return dict(calls[-1].kwargs["headers"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- aioresponses

async def test_user_agent_names_the_bot_and_its_version(session: aiohttp.ClientSession) -> None:
    with aioresponses() as mocked:
        mock_get(mocked, URL, body=RSS, headers={"Content-Type": "application/rss+xml"})
        result = await Fetcher(session).fetch(URL)
        headers = sent_headers(mocked)
    assert result.status == 200 and result.body == RSS
    assert result.content_type == "application/rss+xml"
    assert headers["User-Agent"] == USER_AGENT
    assert headers["User-Agent"].startswith(f"feed-tweeter/{__version__} ")
    assert "rss+xml" in headers["Accept"] and "gzip" in headers["Accept-Encoding"]
    assert "If-None-Match" not in headers and "If-Modified-Since" not in headers


async def test_conditional_get_sends_validators_and_returns_304(
    session: aiohttp.ClientSession,
) -> None:
    lm = "Wed, 01 May 2024 10:00:00 GMT"
    with aioresponses() as mocked:
        mock_get(mocked, URL, status=304)
        result = await Fetcher(session).fetch(URL, etag='"v1"', last_modified=lm)
        headers = sent_headers(mocked)
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == lm
    # a 304 without validators keeps the ones we sent
    assert (result.status, result.body, result.etag, result.last_modified) == (304, b"", '"v1"', lm)
    assert result.final_url is None


async def test_200_returns_the_new_validators(session: aiohttp.ClientSession) -> None:
    with aioresponses() as mocked:
        mock_get(mocked, URL, body=RSS,
                 headers={"ETag": '"v2"', "Last-Modified": "Thu, 02 May 2024"})
        result = await Fetcher(session).fetch(URL, etag='"v1"')
    assert (result.etag, result.last_modified) == ('"v2"', "Thu, 02 May 2024")


async def test_410_is_feed_gone(session: aiohttp.ClientSession) -> None:
    with aioresponses() as mocked:
        mock_get(mocked, URL, status=410)
        with pytest.raises(FeedGoneError, match="410") as info:
            await Fetcher(session).fetch(URL)
    assert info.value.status == 410


@pytest.mark.parametrize("status", [404, 500, 502, 403])
async def test_error_statuses_say_http_and_the_code(
    session: aiohttp.ClientSession, status: int
) -> None:
    with aioresponses() as mocked:
        mock_get(mocked, URL, status=status, headers={"Retry-After": "60"})
        with pytest.raises(FeedFetchError, match=f"^HTTP {status}") as info:
            await Fetcher(session).fetch(URL)
    assert not isinstance(info.value, FeedGoneError)
    assert info.value.status == status
    assert info.value.retry_after is None  # Retry-After is only honoured with 429 and 503


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_seconds(session: aiohttp.ClientSession, status: int) -> None:
    with aioresponses() as mocked:
        mock_get(mocked, URL, status=status, headers={"Retry-After": "120"})
        with pytest.raises(FeedFetchError) as info:
            await Fetcher(session).fetch(URL)
    assert (info.value.status, info.value.retry_after) == (status, 120.0)


async def test_retry_after_http_date(session: aiohttp.ClientSession) -> None:
    when = datetime.now(UTC) + timedelta(minutes=10)
    with aioresponses() as mocked:
        mock_get(mocked, URL, status=503,
                 headers={"Retry-After": format_datetime(when, usegmt=True)})
        with pytest.raises(FeedFetchError) as info:
            await Fetcher(session).fetch(URL)
    assert info.value.retry_after is not None
    assert 590 <= info.value.retry_after <= 600


async def test_429_without_retry_after(session: aiohttp.ClientSession) -> None:
    with aioresponses() as mocked:
        mock_get(mocked, URL, status=429)
        with pytest.raises(FeedFetchError) as info:
            await Fetcher(session).fetch(URL)
    assert (info.value.status, info.value.retry_after) == (429, None)


def test_parse_retry_after() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Wed, 01 May 2024 12:02:00 GMT", now) == 120.0
    assert parse_retry_after("Wed, 01 May 2024 12:02:00 -0000", now) == 120.0  # naive: UTC
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("1.5", now) == 1.5  # X sends whole seconds; a fraction is fine
    for bad in (None, "", "soon", "-5", "1e999", "Wed, 99 Foo 2024"):
        assert parse_retry_after(bad, now) is None, bad


async def test_declared_length_over_the_cap_is_refused_before_reading(
    session: aiohttp.ClientSession,
) -> None:
    with aioresponses() as mocked:
        mock_get(mocked, URL, body=b"x" * 2000, headers={"Content-Length": "2000"})
        with pytest.raises(FeedFetchError, match="too large") as info:
            await Fetcher(session, max_bytes=1000).fetch(URL)
    assert "MAX_FEED_BYTES=1000" in str(info.value)


async def test_body_at_the_cap_is_fine(session: aiohttp.ClientSession) -> None:
    with aioresponses() as mocked:
        mock_get(mocked, URL, body=b"x" * 1000)
        result = await Fetcher(session, max_bytes=1000).fetch(URL)
    assert len(result.body) == 1000


async def test_permanent_redirect_sets_final_url(session: aiohttp.ClientSession) -> None:
    new = "http://new.example.org/feed.xml"
    with aioresponses() as mocked:
        mock_get(mocked, URL, status=301, headers={"Location": new})
        mock_get(mocked, new, body=RSS)
        result = await Fetcher(session).fetch(URL)
    assert (result.status, result.final_url, result.body) == (200, new, RSS)


async def test_temporary_redirect_leaves_final_url_unset(session: aiohttp.ClientSession) -> None:
    new = "http://cdn.example.org/feed.xml"
    with aioresponses() as mocked:
        mock_get(mocked, URL, status=302, headers={"Location": new})
        mock_get(mocked, new, body=RSS)
        result = await Fetcher(session).fetch(URL)
    assert (result.status, result.final_url, result.body) == (200, None, RSS)


async def test_connection_error_says_cannot_connect(session: aiohttp.ClientSession) -> None:
    with aioresponses() as mocked:
        mock_get(mocked, URL, exception=aiohttp.ClientConnectionError("boom"))
        with pytest.raises(FeedFetchError, match="boom") as info:
            await Fetcher(session).fetch(URL)
    assert info.value.status is None


# --------------------------------------------------------------------------- loopback servers

async def test_conditional_get_against_a_real_blog(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    blog = feed_server.add_blog("/feed.xml")
    blog.publish("Hello")
    fetcher = Fetcher(session)
    first = await fetcher.fetch(blog.url)
    assert first.status == 200 and b"Hello" in first.body and first.etag and first.last_modified
    again = await fetcher.fetch(blog.url, etag=first.etag, last_modified=first.last_modified)
    assert again.status == 304 and again.body == b""
    assert (again.etag, again.last_modified) == (first.etag, first.last_modified)
    by_date = await fetcher.fetch(blog.url, last_modified=first.last_modified)
    assert by_date.status == 304
    blog.publish("World")
    changed = await fetcher.fetch(blog.url, etag=first.etag, last_modified=first.last_modified)
    assert changed.status == 200 and b"World" in changed.body and changed.etag != first.etag


async def test_user_agent_reaches_the_server(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("User-Agent", ""))
        return web.Response(body=RSS)

    feed_server.set_handler("/ua.xml", handler)
    await Fetcher(session).fetch(feed_server.url("/ua.xml"))
    assert seen == [USER_AGENT]


async def stream_forever(request: web.Request, chunk: bytes, pause: float = 0.0
                         ) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):  # the client hung up: what we wanted
        for _ in range(100_000):
            await response.write(chunk)
            await asyncio.sleep(pause)
    return response


async def test_endless_chunked_body_is_cut_at_the_cap(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    feed_server.set_handler("/endless.xml", lambda r: stream_forever(r, b"<x>" * 20_000))
    started = time.monotonic()
    with pytest.raises(FeedFetchError, match="too large") as info:
        await Fetcher(session, max_bytes=1_000_000, timeout=10).fetch(
            feed_server.url("/endless.xml"))
    assert time.monotonic() - started < 5
    assert "after decompression" in str(info.value)
    assert info.value.status == 200


def gzip_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(size >> 20)]
    return b"".join([*parts, compressor.flush()])


async def test_gzip_body_is_decompressed_and_capped_after_decompression(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    body = RSS + b" " * 5000
    packed = gzip.compress(body)
    feed_server.serve_bytes("/small.xml", packed, headers={"Content-Encoding": "gzip"})
    result = await Fetcher(session, max_bytes=len(body)).fetch(feed_server.url("/small.xml"))
    assert result.body == body
    # its compressed size is under the cap, its real size is not
    assert len(packed) < len(body) - 1
    with pytest.raises(FeedFetchError, match="too large"):
        await Fetcher(session, max_bytes=len(body) - 1).fetch(feed_server.url("/small.xml"))


async def test_gzip_bomb_is_stopped_without_inflating_it(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    bomb = gzip_zeros(256 << 20)  # 256 MiB of zeros in ~250 KB
    assert len(bomb) < 400_000
    feed_server.serve_bytes("/bomb.xml", bomb, headers={"Content-Encoding": "gzip"})
    fetcher = Fetcher(session, max_bytes=2 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(FeedFetchError, match="too large"):
            await fetcher.fetch(feed_server.url("/bomb.xml"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the cap is 2 MiB; inflating a good part of the 256 MiB would show here
    assert peak < 16 << 20, f"peak Python allocations {peak / 2**20:.1f} MiB"


async def test_content_length_over_the_cap_with_gzip_still_capped_after_decompression(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """Content-Length is the compressed size: not a reason to refuse, nor to trust."""
    body = RSS + b" " * 100_000
    packed = gzip.compress(body)
    feed_server.serve_bytes("/z.xml", packed, headers={"Content-Encoding": "gzip"})
    result = await Fetcher(session, max_bytes=len(packed) + 1000 + len(body)).fetch(
        feed_server.url("/z.xml"))
    assert result.body == body


async def raw_http_server(reply: bytes) -> tuple[asyncio.Server, str]:
    """A TCP server that reads a request and answers ``reply`` verbatim, then hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/feed.xml"


async def test_content_length_lies_short_body_is_an_error(
    session: aiohttp.ClientSession,
) -> None:
    server, url = await raw_http_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n<rss>only this")
    async with server:
        with pytest.raises(FeedFetchError, match="cut short") as info:
            await Fetcher(session).fetch(url)
    assert info.value.status is None


async def test_content_length_lies_longer_body_is_never_read_past_the_declared_length(
    session: aiohttp.ClientSession,
) -> None:
    """Bytes past Content-Length are not the body: aiohttp either stops at the declared
    length or, when the surplus arrives with the body, rejects it as a malformed next
    response. Either way the surplus never reaches the parser."""
    server, url = await raw_http_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n<rss>" + b"x" * 100_000)
    async with server:
        try:
            result = await Fetcher(session).fetch(url)
        except FeedFetchError as exc:
            assert "invalid HTTP response" in str(exc)
            assert exc.status is None
        else:
            assert result.body == b"<rss>"


async def test_garbage_instead_of_http_is_an_error_without_a_status(
    session: aiohttp.ClientSession,
) -> None:
    server, url = await raw_http_server(b"\x00\x01\x02 SSH-2.0-OpenSSH\r\n\r\n")
    async with server:
        with pytest.raises(FeedFetchError, match="invalid HTTP response") as info:
            await Fetcher(session).fetch(url)
    assert info.value.status is None  # aiohttp says 400; the server never sent a status
    assert "\n" not in str(info.value)


async def test_a_server_that_never_answers_hits_the_timeout(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    async def never(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    feed_server.set_handler("/never.xml", never)
    started = time.monotonic()
    with pytest.raises(FeedFetchError, match=r"timed out after 0\.5 s"):
        await Fetcher(session, timeout=0.5).fetch(feed_server.url("/never.xml"))
    assert 0.4 < time.monotonic() - started < 3


async def test_a_trickle_hits_the_total_timeout_not_a_per_read_one(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """A byte every 0.1 s keeps any per-read timeout happy; the total timeout still fires."""
    feed_server.set_handler("/trickle.xml", lambda r: stream_forever(r, b"<", pause=0.1))
    started = time.monotonic()
    with pytest.raises(FeedFetchError, match="timed out"):
        await Fetcher(session, timeout=1.0).fetch(feed_server.url("/trickle.xml"))
    assert 0.9 < time.monotonic() - started < 4


async def test_connection_refused(session: aiohttp.ClientSession) -> None:
    port = free_port()
    with pytest.raises(FeedFetchError, match=f"cannot connect to 127.0.0.1:{port}: "
                                             "connection refused") as info:
        await Fetcher(session).fetch(f"http://127.0.0.1:{port}/feed.xml")
    assert info.value.status is None


async def test_real_410_404_and_429(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    feed_server.serve_bytes("/gone.xml", b"gone", status=410)
    feed_server.serve_bytes("/slow-down.xml", b"", status=429, headers={"Retry-After": "120"})
    fetcher = Fetcher(session)
    with pytest.raises(FeedGoneError):
        await fetcher.fetch(feed_server.url("/gone.xml"))
    with pytest.raises(FeedFetchError, match="HTTP 404 Not Found"):
        await fetcher.fetch(feed_server.url("/nothing-here.xml"))
    with pytest.raises(FeedFetchError, match="HTTP 429") as info:
        await fetcher.fetch(feed_server.url("/slow-down.xml"))
    assert info.value.retry_after == 120.0


def redirect(status: int, to: str):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": to})

    return handler


@pytest.mark.parametrize(("hops", "remembered"), [
    ([301], True), ([308], True), ([301, 308], True),
    ([302], False), ([307], False), ([303], False), ([301, 302], False), ([302, 301], False),
])
async def test_only_all_permanent_redirects_set_final_url(
    feed_server: FeedServer, session: aiohttp.ClientSession, hops: list[int], remembered: bool
) -> None:
    feed_server.serve_bytes("/target.xml", RSS)
    for i, status in enumerate(hops):
        nxt = f"/hop{i + 1}.xml" if i + 1 < len(hops) else "/target.xml"
        feed_server.set_handler(f"/hop{i}.xml", redirect(status, nxt))
    result = await Fetcher(session).fetch(feed_server.url("/hop0.xml"))
    assert result.body == RSS
    assert result.final_url == (feed_server.url("/target.xml") if remembered else None)


async def test_a_redirect_loop_is_an_error_naming_redirects(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    feed_server.set_handler("/a.xml", redirect(301, "/b.xml"))
    feed_server.set_handler("/b.xml", redirect(301, "/a.xml"))
    with pytest.raises(FeedFetchError, match="redirect loop") as info:
        await Fetcher(session).fetch(feed_server.url("/a.xml"))
    assert "/b.xml" in str(info.value)
    hits = feed_server.hits["/a.xml"] + feed_server.hits["/b.xml"]
    assert hits == MAX_REDIRECTS  # aiohttp counts requests: MAX_REDIRECTS in all


class ConcurrencyProbe:
    """A handler that takes ``delay`` seconds and records how many requests overlap."""

    def __init__(self, delay: float = 0.3) -> None:
        self.delay = delay
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.finished: dict[str, float] = {}

    async def __call__(self, request: web.Request) -> web.Response:
        host = request.headers["Host"].split(":")[0]
        self.now[host] += 1
        self.now["*"] += 1
        self.peak[host] = max(self.peak[host], self.now[host])
        self.peak["*"] = max(self.peak["*"], self.now["*"])
        try:
            await asyncio.sleep(float(request.query.get("delay", self.delay)))
        finally:
            self.now[host] -= 1
            self.now["*"] -= 1
        self.finished[request.path_qs] = time.monotonic()
        return web.Response(body=RSS)


async def test_at_most_two_fetches_per_host(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    probe = ConcurrencyProbe()
    feed_server.set_handler("/probe.xml", probe)
    fetcher = Fetcher(session, max_concurrent=20, max_per_host=2)
    await asyncio.gather(*(fetcher.fetch(feed_server.url(f"/probe.xml?n={i}"))
                           for i in range(6)))
    assert probe.peak["127.0.0.1"] == 2
    assert len(fetcher._per_host) == 0  # idle hosts keep no state


async def test_global_limit_across_hosts(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """127.0.0.1 and localhost are two host names of the same server."""
    probe = ConcurrencyProbe()
    feed_server.set_handler("/probe.xml", probe)
    port = feed_server.base_url.rsplit(":", 1)[1]
    fetcher = Fetcher(session, max_concurrent=3, max_per_host=2)
    urls = [f"http://{host}:{port}/probe.xml?n={i}"
            for host in ("127.0.0.1", "localhost") for i in range(4)]
    await asyncio.gather(*(fetcher.fetch(u) for u in urls))
    assert probe.peak["*"] == 3
    assert probe.peak["127.0.0.1"] <= 2 and probe.peak["localhost"] <= 2


async def test_a_busy_host_does_not_hold_global_slots_another_host_needs(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """Five slow feeds on one host, three global slots: the host uses two, and a feed on
    another host gets the third at once instead of queueing behind the busy host."""
    probe = ConcurrencyProbe()
    feed_server.set_handler("/probe.xml", probe)
    port = feed_server.base_url.rsplit(":", 1)[1]
    fetcher = Fetcher(session, max_concurrent=3, max_per_host=2)
    busy = [asyncio.create_task(fetcher.fetch(f"http://127.0.0.1:{port}/probe.xml?delay=1&n={i}"))
            for i in range(5)]
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await fetcher.fetch(f"http://localhost:{port}/probe.xml?delay=0&n=other")
    waited = time.monotonic() - started
    await asyncio.gather(*busy)
    assert waited < 0.8, f"the other host waited {waited:.2f} s behind the busy one"
    assert probe.peak["127.0.0.1"] == 2
