"""Tests of the test doubles themselves: tests/fakes/fake_x.py and tests/fakes/feed_server.py."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import oauthlib.oauth1
import pytest
from aiohttp import web

from tests.fakes.fake_x import DUPLICATE_DETAIL, FakeX, Fault
from tests.fakes.feed_server import FeedServer

ROOT = Path(__file__).resolve().parent.parent


def sign(url: str, *, ck: str = "ck", cs: str = "cs", at: str = "at",
         ats: str = "ats") -> dict[str, str]:
    """Headers of a POST to ``url`` signed the way tweepy signs (oauthlib, HMAC-SHA1)."""
    client = oauthlib.oauth1.Client(ck, cs, at, ats)
    _, headers, _ = client.sign(url, "POST", headers={"Content-Type": "application/json"})
    return dict(headers)


@pytest.fixture
async def fx() -> AsyncIterator[FakeX]:
    async with FakeX() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, fx: FakeX, text: str | None,
               **sign_kw: str) -> tuple[int, Any, aiohttp.ClientResponse]:
    body = {} if text is None else {"text": text}
    async with http.post(fx.tweets_url, json=body, headers=sign(fx.tweets_url, **sign_kw)) as r:
        raw = await r.text()
        return r.status, json.loads(raw) if raw.startswith("{") else raw, r


# -- FakeX -------------------------------------------------------------------------------


async def test_signed_post_is_accepted(fx: FakeX, http: aiohttp.ClientSession) -> None:
    status, body, resp = await post(http, fx, "hello")
    assert status == 201
    assert resp.content_type == "application/json"
    assert body["data"]["text"] == "hello"
    assert body["data"]["id"].isdigit()
    assert body["data"]["edit_history_tweet_ids"] == [body["data"]["id"]]
    assert int(resp.headers["x-rate-limit-reset"]) > time.time()
    assert int(resp.headers["x-rate-limit-remaining"]) >= 0
    assert fx.texts() == ["hello"]
    assert fx.requests[0].signature_ok and fx.requests[0].status == 201
    _, second, _ = await post(http, fx, "again")
    assert int(second["data"]["id"]) > int(body["data"]["id"])


@pytest.mark.parametrize("how", ["wrong_secret", "wrong_token_secret", "other_url", "none"])
async def test_bad_signature_is_401(fx: FakeX, http: aiohttp.ClientSession, how: str) -> None:
    headers = {
        "wrong_secret": sign(fx.tweets_url, cs="nope"),
        "wrong_token_secret": sign(fx.tweets_url, ats="nope"),
        # tweepy signs https://api.twitter.com/2/tweets: wrong for a request arriving here
        "other_url": sign("https://api.twitter.com/2/tweets"),
        "none": {},
    }[how]
    async with http.post(fx.tweets_url, json={"text": "x"}, headers=headers) as r:
        assert r.status == 401
        assert r.content_type == "application/problem+json"
        assert (await r.json())["title"] == "Unauthorized"  # default content_type accepts it
    assert fx.ledger == []
    assert fx.requests[0].signature_ok is False


async def test_missing_text_is_400_and_duplicate_is_403(
    fx: FakeX, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await post(http, fx, None)
    assert status == 400 and body["title"] == "Invalid Request"
    assert (await post(http, fx, "same"))[0] == 201
    status, body, resp = await post(http, fx, "same")
    assert status == 403
    assert body["detail"] == DUPLICATE_DETAIL
    assert resp.content_type == "application/problem+json"
    assert fx.texts() == ["same"]


async def test_cuts(fx: FakeX, http: aiohttp.ClientSession) -> None:
    fx.faults.extend([Fault.cut_before(), Fault.cut_after()])
    for text in ("before", "after"):
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await post(http, fx, text)
    assert fx.texts() == ["after"]
    assert [(r.fault, r.status) for r in fx.requests] == [("cut_before", None),
                                                           ("cut_after", None)]
    assert (await post(http, fx, "next"))[0] == 201  # the session recovers


async def test_status_faults(fx: FakeX, http: aiohttp.ClientSession) -> None:
    reset = time.time() + 60
    fx.faults.extend([
        Fault.rate_limited(reset_15min=reset, user_24h_remaining=0, user_24h_reset=reset + 3600,
                           retry_after=5),
        Fault.server_error_html(503),
        Fault.payment_required(),
        Fault.forbidden(),
    ])
    status, body, resp = await post(http, fx, "a")
    assert status == 429 and body["title"] == "Too Many Requests"
    assert resp.headers["x-rate-limit-remaining"] == "0"
    assert resp.headers["x-rate-limit-reset"] == str(int(reset) + 1)
    assert resp.headers["x-user-limit-24hour-remaining"] == "0"
    assert resp.headers["retry-after"] == "5"
    assert "x-app-limit-24hour-reset" not in resp.headers
    async with http.post(fx.tweets_url, json={"text": "a"}, headers=sign(fx.tweets_url)) as r:
        assert r.status == 503 and r.content_type == "text/html"
        with pytest.raises(aiohttp.ContentTypeError):
            await r.json()
    assert (await post(http, fx, "a"))[:2] == (402, {
        "title": "CreditsDepleted", "status": 402,
        "detail": "Your enrolled account does not have any credits to fulfill this request."})
    assert (await post(http, fx, "a"))[0] == 403
    assert fx.ledger == []
    assert (await post(http, fx, "a"))[0] == 201


async def test_reject_credentials_delay_and_concurrency(
    fx: FakeX, http: aiohttp.ClientSession
) -> None:
    fx.reject_credentials(True)
    assert (await post(http, fx, "a"))[0] == 401
    fx.reject_credentials(False)
    fx.delay = 0.2
    results = await asyncio.gather(*(post(http, fx, f"t{i}") for i in range(3)))
    assert [r[0] for r in results] == [201] * 3
    assert fx.max_in_flight == 3 and fx.in_flight == 0


async def test_wait_for_tweets_times_out_helpfully(fx: FakeX) -> None:
    with pytest.raises(TimeoutError, match="expected >= 1 tweets"):
        await fx.wait_for_tweets(1, timeout=0.05)


async def test_user_daily_limit(http: aiohttp.ClientSession) -> None:
    now = [1_000_000.0]
    async with FakeX(user_daily_limit=1, clock=lambda: now[0]) as fx:
        status, _, resp = await post(http, fx, "one")
        assert status == 201 and resp.headers["x-user-limit-24hour-remaining"] == "0"
        status, _, resp = await post(http, fx, "two")
        assert status == 429 and resp.headers["x-user-limit-24hour-reset"] == "1086400"
        assert resp.headers["x-rate-limit-remaining"] != "0"  # the 15-min clock is not it
        now[0] += 86_400
        assert (await post(http, fx, "two"))[0] == 201


async def test_control_and_ledger_endpoints(fx: FakeX, http: aiohttp.ClientSession) -> None:
    spec = {"delay": 0, "reject_credentials": False,
            "faults": [{"kind": "status", "code": 502, "body": "bad gateway"},
                       {"kind": "rate_limited", "reset_15min": 1.5}]}
    async with http.post(fx.base_url + "/2/_control", json=spec) as r:
        assert r.status == 200 and (await r.json())["pending_faults"] == 2
    assert (await post(http, fx, "a"))[0] == 502
    assert (await post(http, fx, "a"))[0] == 429
    assert (await post(http, fx, "a"))[0] == 201
    async with http.get(fx.base_url + "/2/ledger") as r:
        assert [t["text"] for t in (await r.json())["tweets"]] == ["a"]


async def test_fail_ratio_mixes_faults(fx: FakeX, http: aiohttp.ClientSession) -> None:
    async with http.post(fx.base_url + "/2/_control", json={"fail_ratio": 1, "seed": 1}):
        pass
    for i in range(20):
        try:
            await post(http, fx, f"t{i}")
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            pass
    assert {r.fault for r in fx.requests} == {"status", "cut_before", "cut_after"}
    assert {r.status for r in fx.requests} == {None, 503, 429}


async def _read_line(proc: asyncio.subprocess.Process, prefix: str) -> str:
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode().strip()
    assert line.startswith(prefix), line
    return line.removeprefix(prefix)


async def test_standalone_processes(http: aiohttp.ClientSession) -> None:
    x = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.fake_x", "--port", "0", "--consumer-key", "K",
        "--consumer-secret", "S", "--access-token", "T", "--access-token-secret", "TS",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    feed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.feed_server", "--port", "0", "--publish-every",
        "0.1", "--initial", "1", cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    try:
        base = await _read_line(x, "FAKE_X_URL=")
        url = base + "/2/tweets"
        headers = sign(url, ck="K", cs="S", at="T", ats="TS")
        async with http.post(url, json={"text": "hi"}, headers=headers) as r:
            assert r.status == 201
        feed_url = await _read_line(feed, "FEED_URL=")
        await _read_line(feed, "PUBLISHED Article 2 ")
        async with http.get(feed_url) as r:
            assert r.status == 200 and b"Article 2" in await r.read()
    finally:
        for proc in (x, feed):
            if proc.returncode is None:
                proc.terminate()
    out, _ = await x.communicate()
    await feed.communicate()
    assert x.returncode == 0 and feed.returncode == 0
    assert out.decode().strip().endswith('LEDGER ["hi"]')


# -- FeedServer --------------------------------------------------------------------------


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        yield server


async def test_blog_rss_newest_first(feeds: FeedServer, http: aiohttp.ClientSession) -> None:
    blog = feeds.add_blog("/b/feed.xml", title="A & B")
    first = blog.publish("One <1>", summary="s & t", categories=["x"], author="Ann")
    second = blog.publish("Two")
    assert first.link == feeds.url("/b/feed/posts/1") and first.guid == first.link
    assert second.published > first.published
    async with http.get(blog.url) as r:
        assert r.status == 200 and r.content_type == "application/rss+xml"
        root = ET.fromstring(await r.read())
    assert root.findtext("channel/title") == "A & B"
    items = root.findall("channel/item")
    assert [i.findtext("title") for i in items] == ["Two", "One <1>"]
    assert [i.findtext("guid") for i in items] == [second.guid, first.guid]
    assert items[1].findtext("description") == "s & t"
    async with http.get(first.link) as r:
        assert r.status == 200
    assert feeds.hits["/b/feed.xml"] == 1 and len(feeds.hit_times["/b/feed.xml"]) == 1


async def test_blog_conditional_get(feeds: FeedServer, http: aiohttp.ClientSession) -> None:
    blog = feeds.add_blog("/feed.xml")
    article = blog.publish("One")
    async with http.get(blog.url) as r:
        etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    async with http.get(blog.url, headers={"If-None-Match": etag}) as r:
        assert r.status == 304
    async with http.get(blog.url, headers={"If-Modified-Since": modified}) as r:
        assert r.status == 304
    blog.edit(article.guid, title="One, edited")
    async with http.get(blog.url, headers={"If-None-Match": etag}) as r:
        assert r.status == 200 and r.headers["ETag"] != etag
    async with http.get(blog.url, headers={"If-Modified-Since": modified}) as r:
        assert r.status == 200 and b"One, edited" in await r.read()


async def test_blog_status_bytes_and_handlers(
    feeds: FeedServer, http: aiohttp.ClientSession
) -> None:
    blog = feeds.add_blog("/gone.xml")
    blog.status = 410
    feeds.serve_bytes("/static.xml", b"<rss/>", content_type="text/xml")

    async def teapot(request: web.Request) -> web.Response:
        return web.Response(status=418, text=json.dumps({"path": request.path}))

    feeds.set_handler("/custom", teapot)
    for path, status in [("/gone.xml", 410), ("/static.xml", 200), ("/custom", 418),
                         ("/missing", 404)]:
        async with http.get(feeds.url(path)) as r:
            assert r.status == status, path
    assert feeds.hits["/missing"] == 1
