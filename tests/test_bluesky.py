"""BlueskyClient against the loopback fake PDS: what a reader of the account would notice (one
post per article, the link clickable, a card with its image or at least its text) and what
the dispatcher acts on (each kind of answer becomes the right Outcome, exactly once)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import struct
import sys
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.bluesky import BlueskyClient, link_facet, rate_limit_reset
from bot.delivery import Card, Delivery, OutcomeKind, new_key
from bot.networks import display_link
from tests.fakes.fake_bluesky import FakePDS, Fault

HANDLE = "alice.test"
APP_PASSWORD = "s3cr-etap-ppas-sw0d"  # what must never show up in a log or a reason
LINK = "https://example.org/2024/05/a-long-article-slug?utm=x"
NOW = 1_900_000_000.0


def png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny) PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                              8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def delivery(text: str | None = None, *, link: str | None = LINK, card: Card | None = None,
             attempts: int = 0, key: str | None = None) -> Delivery:
    if text is None:
        text = f"Café ☕ 東京 — Ünïcödé first {display_link(link)}" if link else "no link here"
    return Delivery(post_id=7, text=text, key=key or new_key(), attempts=attempts, link=link,
                    card=card, destination="bluesky")


@pytest.fixture
async def pds() -> AsyncIterator[FakePDS]:
    async with FakePDS(handle=HANDLE, app_password=APP_PASSWORD) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def bsky(pds: FakePDS, session: aiohttp.ClientSession) -> AsyncIterator[BlueskyClient]:
    async with BlueskyClient(handle=HANDLE, app_password=APP_PASSWORD,
                             service_url=pds.base_url, session=session, timeout=5.0) as client:
        yield client


def assert_no_secret(text: str, pds: FakePDS) -> None:
    assert APP_PASSWORD not in text
    for token in pds.issued_tokens:
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature


# -- what a reader sees --------------------------------------------------------------------


async def test_a_post_appears_once_with_a_clickable_link_and_a_card_with_its_image(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    image = pds.add_image("cover.png", png())
    post = delivery(card=Card("A long article", "What it is about", image))
    outcome = await bsky.send(post)
    assert outcome.kind == OutcomeKind.SENT and outcome.status == 200
    [record] = pds.records
    assert outcome.tweet_id == record.uri == f"at://{pds.did}/app.bsky.feed.post/{post.key}"
    assert record.rkey == post.key and record.text == post.text
    assert record.value["createdAt"].endswith("Z")
    [facet] = record.value["facets"]
    index = facet["index"]
    shown = post.text.encode()[index["byteStart"]:index["byteEnd"]].decode()
    assert shown == display_link(LINK) == "example.org/2024/05/a-lo..."
    assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": LINK}]
    external = record.value["embed"]["external"]
    assert record.value["embed"]["$type"] == "app.bsky.embed.external"
    assert (external["uri"], external["title"], external["description"]) == (
        LINK, "A long article", "What it is about")
    [blob] = pds.blobs
    assert external["thumb"]["ref"]["$link"] == blob.cid
    assert external["thumb"]["mimeType"] == blob.mime_type == "image/png"
    assert blob.data == png()
    assert pds.sessions_created == 1


@pytest.mark.parametrize("before", ["é", "🎉🎉 ", "東京の記事：", "👩‍👩‍👧 e\u0301 ", ""])
async def test_the_facet_covers_the_link_whatever_comes_before_it(
    pds: FakePDS, bsky: BlueskyClient, before: str
) -> None:
    post = delivery(f"{before}{display_link(LINK)} ✓")
    assert (await bsky.send(post)).kind == OutcomeKind.SENT
    index = pds.records[-1].value["facets"][0]["index"]
    assert post.text.encode()[index["byteStart"]:index["byteEnd"]] == display_link(LINK).encode()


_LINKS = st.sampled_from([LINK, "https://example.org/", "http://exämple.org/a",
                          "https://blog.example.com/p/日本語-スラッグ/", "https://x.io/abc"])


@given(before=st.text(), after=st.text(), link=_LINKS, full=st.booleans())
@example(before="\U0001f600" * 3, after="", link=LINK, full=False)
@example(before="a\x00\u200d", after="é", link=LINK, full=True)
def test_the_facet_is_the_link_in_bytes_of_utf8_for_any_text(
    before: str, after: str, link: str, full: bool
) -> None:
    shown = link if full else display_link(link)
    text = before + shown + after
    facet = link_facet(text, link)
    assert facet is not None
    index = facet["index"]
    data = text.encode("utf-8")
    assert 0 <= index["byteStart"] < index["byteEnd"] <= len(data)
    assert data[index["byteStart"]:index["byteEnd"]].decode("utf-8") in (shown,
                                                                         display_link(link))
    assert facet["features"][0]["uri"] == link


async def test_no_link_no_facet_no_card_and_a_link_not_in_the_text_gets_no_facet(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    assert (await bsky.send(delivery("just words", link=None))).kind == OutcomeKind.SENT
    assert "facets" not in pds.records[0].value and "embed" not in pds.records[0].value
    post = delivery("words without the link", card=Card("Title"))
    assert (await bsky.send(post)).kind == OutcomeKind.SENT
    assert "facets" not in pds.records[1].value
    assert pds.records[1].value["embed"]["external"]["uri"] == LINK


# -- the card's image: any trouble, and the post goes out without it -------------------------


@pytest.mark.parametrize(("name", "body", "kind", "status", "reason"), [
    ("big.png", png() + b"\x00" * 2_000_000, "image/png", 200, "larger than"),
    ("page.png", b"<html>not found</html>", "text/html", 200, "not an image: text/html"),
    ("lies.png", b"<html>an error page</html>", "image/png", 200, "the bytes are no"),
    ("gone.png", b"", "image/png", 404, "HTTP 404"),
    ("vector.svg", b"<svg/>", "image/svg+xml", 200, "not an image: image/svg+xml"),
])
async def test_a_bad_image_means_a_card_without_thumb_still_posted(
    pds: FakePDS, bsky: BlueskyClient, caplog: pytest.LogCaptureFixture,
    name: str, body: bytes, kind: str, status: int, reason: str,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.bluesky")
    url = pds.add_image(name, body, kind, status=status)
    outcome = await bsky.send(delivery(card=Card("Title", "Desc", url)))
    assert outcome.kind == OutcomeKind.SENT
    external = pds.records[0].value["embed"]["external"]
    assert "thumb" not in external and external["title"] == "Title"
    assert pds.blobs == []
    [line] = [r.getMessage() for r in caplog.records if "bluesky_thumb_skipped" in r.getMessage()]
    assert reason in line and "post_id=7" in line


async def test_an_endless_image_is_never_read_to_its_end(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    chunk = png() + b"\x00" * (1 << 16)
    url = pds.add_image("endless.png", chunk, repeat=2_000)  # ~130 MB, chunked, no length
    started = time.monotonic()
    assert (await bsky.send(delivery(card=Card("T", "D", url)))).kind == OutcomeKind.SENT
    assert time.monotonic() - started < 3
    assert "thumb" not in pds.records[0].value["embed"]["external"]
    await asyncio.sleep(0.1)
    assert pds.image_bytes_sent["endless.png"] < 32 * len(chunk) * 16  # a few MB of buffers


async def test_a_slow_image_gives_up_in_time_and_posts_without_it(
    pds: FakePDS, session: aiohttp.ClientSession
) -> None:
    url = pds.add_image("slow.png", png(), delay=2.0)
    async with BlueskyClient(handle=HANDLE, app_password=APP_PASSWORD, session=session,
                             service_url=pds.base_url, timeout=1.5) as client:
        started = time.monotonic()
        outcome = await client.send(delivery(card=Card("T", "D", url)))
    assert outcome.kind == OutcomeKind.SENT
    assert time.monotonic() - started < 1.4
    assert "thumb" not in pds.records[0].value["embed"]["external"]


async def test_a_blob_the_pds_finds_too_large_413_means_no_thumb(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    pds.max_blob_bytes = 10
    url = pds.add_image("cover.png", png())
    assert (await bsky.send(delivery(card=Card("T", "D", url)))).kind == OutcomeKind.SENT
    assert "thumb" not in pds.records[0].value["embed"]["external"]
    assert pds.calls("com.atproto.repo.uploadBlob", status=413) == 1


# -- the session ----------------------------------------------------------------------------


async def test_one_login_for_many_posts_even_when_they_start_together(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    outcomes = await asyncio.gather(*(bsky.send(delivery(f"post {i}")) for i in range(4)))
    assert [o.kind for o in outcomes] == [OutcomeKind.SENT] * 4
    assert pds.sessions_created == 1 and len(pds.records) == 4


async def test_an_access_token_near_its_end_is_refreshed_not_logged_in_again(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    pds.access_lifetime = 60  # atproto refreshes when less than 15 minutes are left
    assert (await bsky.send(delivery("one"))).kind == OutcomeKind.SENT
    assert (await bsky.send(delivery("two"))).kind == OutcomeKind.SENT
    assert pds.texts() == ["one", "two"]
    assert pds.sessions_created == 1 and pds.sessions_refreshed >= 1


@pytest.mark.parametrize("expired_status", [400, 401])
async def test_expired_token_from_the_pds_refreshes_and_posts(
    pds: FakePDS, bsky: BlueskyClient, expired_status: int
) -> None:
    pds.expired_token_status = expired_status
    assert (await bsky.send(delivery("one"))).kind == OutcomeKind.SENT
    pds.expire_tokens()  # the PDS's clock says so, ours does not
    assert (await bsky.send(delivery("two"))).kind == OutcomeKind.SENT
    assert pds.texts() == ["one", "two"]
    assert pds.sessions_created == 1 and pds.sessions_refreshed == 1


async def test_a_refused_refresh_means_a_new_login(pds: FakePDS, bsky: BlueskyClient) -> None:
    assert (await bsky.send(delivery("one"))).kind == OutcomeKind.SENT
    pds.expire_tokens()
    pds.revoke_refresh_tokens()
    assert (await bsky.send(delivery("two"))).kind == OutcomeKind.SENT
    assert pds.sessions_created == 2 and pds.texts() == ["one", "two"]


async def test_wrong_app_password_is_auth_and_no_secret_is_logged(
    pds: FakePDS, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # atproto's, httpx's and httpcore's loggers too
    pds.app_password = "another-one"
    async with BlueskyClient(handle=HANDLE, app_password=APP_PASSWORD, session=session,
                             service_url=pds.base_url, env_suffix="_2") as client:
        outcome = await client.send(delivery())
        assert outcome.kind == OutcomeKind.AUTH and outcome.status == 401
        assert "Invalid identifier or password" in outcome.reason
        help_text = client.broken_help[OutcomeKind.AUTH]
        for name in ("BLUESKY_HANDLE_2", "BLUESKY_APP_PASSWORD_2", "BLUESKY_SERVICE_URL_2"):
            assert name in help_text
        assert "App passwords" in help_text
        assert_no_secret(repr(client) + repr(outcome) + caplog.text, pds)
    assert pds.records == []
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # DEBUG was on


async def test_a_revoked_app_password_stops_posting_after_one_refresh_and_one_login(
    pds: FakePDS, bsky: BlueskyClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await bsky.send(delivery("one", link=None))).kind == OutcomeKind.SENT
    pds.reject_credentials(True)
    outcome = await bsky.send(delivery("two", link=None))
    assert outcome.kind == OutcomeKind.AUTH and outcome.status == 401
    assert pds.texts() == ["one"]
    assert pds.calls("com.atproto.server.refreshSession", status=None) == 1
    assert pds.calls("com.atproto.server.createSession", status=401) == 1
    assert len(pds.issued_tokens) == 2  # one session's access and refresh JWTs
    assert_no_secret(repr(bsky) + repr(outcome) + caplog.text, pds)


async def test_a_rate_limited_login_is_rate_limited(
    pds: FakePDS, session: aiohttp.ClientSession
) -> None:
    pds.login_faults.append(Fault.rate_limited(reset=NOW + 300))
    async with BlueskyClient(handle=HANDLE, app_password=APP_PASSWORD, session=session,
                             service_url=pds.base_url, clock=lambda: NOW) as client:
        outcome = await client.send(delivery())
    assert outcome.kind == OutcomeKind.RATE_LIMITED and outcome.retry_at == NOW + 300
    assert "createSession" in outcome.reason


# -- the answers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "retry_at"), [
    (Fault.rate_limited(reset=NOW + 120.5), math.ceil(NOW + 120.5)),
    (Fault.rate_limited(retry_after=30), NOW + 30),
    (Fault.rate_limited(reset=NOW - 5, retry_after=45), NOW + 45),
    (Fault.rate_limited(reset=NOW - 5), None),
    (Fault.rate_limited(reset=NOW), None),
])
async def test_429_is_rate_limited_until_the_reset(
    pds: FakePDS, session: aiohttp.ClientSession, fault: Fault, retry_at: float | None
) -> None:
    pds.faults.append(fault)
    async with BlueskyClient(handle=HANDLE, app_password=APP_PASSWORD, session=session,
                             service_url=pds.base_url, clock=lambda: NOW) as client:
        outcome = await client.send(delivery())
    assert outcome.kind == OutcomeKind.RATE_LIMITED and outcome.status == 429
    assert outcome.retry_at == retry_at
    assert "RateLimitExceeded" in outcome.reason and pds.records == []


def test_rate_limit_reset_reads_the_headers_bluesky_sends() -> None:
    assert rate_limit_reset({"ratelimit-reset": "1900000060"}, NOW) == NOW + 60
    assert rate_limit_reset({"ratelimit-reset": "soon", "retry-after": "5"}, NOW) == NOW + 5
    assert rate_limit_reset({"retry-after": "0"}, NOW) is None
    assert rate_limit_reset({}, NOW) is None


async def test_an_invalid_post_fails_with_the_pds_message(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    outcome = await bsky.send(delivery("é" * 301, link=None))
    assert outcome.kind == OutcomeKind.FAILED and outcome.status == 400
    assert outcome.reason == ("HTTP 400 InvalidRequest: Invalid app.bsky.feed.post record: "
                              "Record/text must not be longer than 300 graphemes")
    assert pds.records == []


async def test_a_text_no_post_can_hold_fails_before_any_call(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    outcome = await bsky.send(delivery("x" * 3001, link=None))
    assert outcome.kind == OutcomeKind.FAILED and "not a valid Bluesky post" in outcome.reason
    assert "\n" not in outcome.reason and pds.requests == []


@pytest.mark.parametrize(("fault", "reason"), [
    (Fault.server_error_html(502), "HTTP 502 HTML page: 502 Service Temporarily Unavailable"),
    (Fault.server_error(503), "HTTP 503 InternalServerError: Internal Server Error"),
    (Fault.cut_before(), "connection error: RemoteProtocolError"),
    (Fault.status(200, "<html>ok?</html>", content_type="text/html"), "unreadable answer"),
])
async def test_trouble_with_nothing_written_is_retry(
    pds: FakePDS, bsky: BlueskyClient, fault: Fault, reason: str
) -> None:
    pds.faults.append(fault)
    outcome = await bsky.send(delivery())
    assert outcome.kind == OutcomeKind.RETRY and reason in outcome.reason
    assert pds.records == []


async def test_no_answer_within_the_timeout_is_retry(
    pds: FakePDS, session: aiohttp.ClientSession
) -> None:
    pds.faults.append(Fault.slow(3))
    async with BlueskyClient(handle=HANDLE, app_password=APP_PASSWORD, session=session,
                             service_url=pds.base_url, timeout=0.5) as client:
        started = time.monotonic()
        outcome = await client.send(delivery())
    assert time.monotonic() - started < 1.5
    assert outcome.kind == OutcomeKind.RETRY and "within 0.5 s" in outcome.reason


async def test_no_pds_at_all_is_retry(session: aiohttp.ClientSession) -> None:
    async with FakePDS() as gone:
        url = gone.base_url
    async with BlueskyClient(handle=HANDLE, app_password=APP_PASSWORD, session=session,
                             service_url=url, timeout=2) as client:
        outcome = await client.send(delivery())
    assert outcome.kind == OutcomeKind.RETRY and "connection error" in outcome.reason


# -- exactly once ----------------------------------------------------------------------------


async def test_a_cut_connection_then_a_retry_finds_the_record_and_posts_nothing_more(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    pds.faults.append(Fault.cut_after())
    post = delivery()
    first = await bsky.send(post)
    assert first.kind == OutcomeKind.RETRY  # the record landed, the answer did not
    assert len(pds.records) == 1
    again = await bsky.send(replace(post, attempts=1))
    assert again.kind == OutcomeKind.DUPLICATE
    assert again.tweet_id == pds.records[0].uri
    assert again.reason == f"already on Bluesky (record {post.key} exists)"
    assert len(pds.records) == 1
    assert pds.calls("com.atproto.repo.createRecord", status=None) == 1


async def test_a_retry_when_nothing_landed_posts_it(pds: FakePDS, bsky: BlueskyClient) -> None:
    pds.faults.append(Fault.cut_before())
    post = delivery()
    assert (await bsky.send(post)).kind == OutcomeKind.RETRY
    again = await bsky.send(replace(post, attempts=1))
    assert again.kind == OutcomeKind.SENT and len(pds.records) == 1
    assert pds.calls("com.atproto.repo.getRecord", status=400) == 1  # RecordNotFound


async def test_create_on_an_existing_rkey_answers_500_and_is_settled_by_get_record(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    post = delivery()
    assert (await bsky.send(post)).kind == OutcomeKind.SENT
    again = await bsky.send(post)  # attempts=0: as if the first answer was never recorded
    assert again.kind == OutcomeKind.DUPLICATE and again.tweet_id == pds.records[0].uri
    assert pds.calls("com.atproto.repo.createRecord", status=500) == 1
    assert len(pds.records) == 1


async def test_a_500_with_nothing_written_is_retry_after_looking(
    pds: FakePDS, bsky: BlueskyClient
) -> None:
    pds.faults.append(Fault.server_error(500))
    outcome = await bsky.send(delivery())
    assert outcome.kind == OutcomeKind.RETRY and outcome.status == 500
    assert pds.calls("com.atproto.repo.getRecord", status=400) == 1
    assert pds.records == []


# -- the fake, standalone ------------------------------------------------------------------


async def test_the_fake_runs_standalone_and_prints_its_ledger(
    session: aiohttp.ClientSession,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.fake_bluesky", "--port", "0", "--handle", HANDLE,
        "--app-password", APP_PASSWORD, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line.startswith("FAKE_BLUESKY_URL=http://127.0.0.1:")
        url = line.strip().split("=", 1)[1]
        async with session.post(f"{url}/_control", json={"faults": [{"kind": "cut_after"}]}) as r:
            assert (await r.json())["pending_faults"] == 1
        async with BlueskyClient(handle=HANDLE, app_password=APP_PASSWORD, session=session,
                                 service_url=url) as client:
            post = delivery("from a subprocess", link=None)
            assert (await client.send(post)).kind == OutcomeKind.RETRY
            again = replace(post, attempts=1)
            assert (await client.send(again)).kind == OutcomeKind.DUPLICATE
        async with session.get(f"{url}/_ledger") as r:
            assert await r.json() == ["from a subprocess"]
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.stdout.read(), 10)).decode()
        assert json.loads(rest.split("LEDGER ", 1)[1]) == ["from a subprocess"]
        assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
