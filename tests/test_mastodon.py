"""MastodonClient against the loopback fake Mastodon: a post goes out once, with its
Idempotency-Key making retries safe; every kind of answer becomes the right Outcome; the token
never leaks; the instance's limits are read or defaulted with a reason. And the fake itself,
checked with plain HTTP, so that the client is tested against Mastodon's rules."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from bot.delivery import Delivery, Outcome, OutcomeKind, new_key
from bot.mastodon import MastodonClient, rate_limit_reset
from tests.conftest import ROOT
from tests.fakes.fake_mastodon import (
    BLANK_TEXT,
    INVALID_TOKEN,
    OUTSIDE_SCOPES,
    FakeMastodon,
    Fault,
    iso_reset,
    too_long_message,
)

TOKEN = "mastodon-token-5e3cr3t-do-not-log-QWERTY"
READ_ONLY = "mastodon-read-only-token-do-not-log-ASDF"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # One connection only: a request that leaked its connection would block the next one.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
        yield s


@pytest.fixture
async def fake() -> AsyncIterator[FakeMastodon]:
    async with FakeMastodon(token=TOKEN, read_only_tokens=[READ_ONLY]) as fm:
        yield fm


def make_client(base_url: str, session: aiohttp.ClientSession, *, token: str = TOKEN,
                **kwargs: object) -> MastodonClient:
    return MastodonClient(base_url=base_url, access_token=token, session=session,
                          **{"timeout": 5.0, **kwargs})  # type: ignore[arg-type]


@pytest.fixture
def client(fake: FakeMastodon, session: aiohttp.ClientSession) -> MastodonClient:
    return make_client(fake.base_url, session)


def delivery(text: str = "New article https://example.org/posts/1", *, key: str | None = None,
             attempts: int = 0) -> Delivery:
    return Delivery(post_id=1, text=text, key=new_key() if key is None else key,
                    attempts=attempts, destination="mastodon")


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- posting -----------------------------------------------------------------------------


async def test_a_post_goes_out_once_with_its_visibility_key_and_token(
    fake: FakeMastodon, session: aiohttp.ClientSession
) -> None:
    client = make_client(fake.base_url + "/", session, visibility="unlisted")
    d = delivery("Hello fediverse https://example.org/a")
    outcome = await client.send(d)
    assert outcome == Outcome(OutcomeKind.SENT, tweet_id=fake.statuses[0].id, status=200)
    assert fake.texts() == ["Hello fediverse https://example.org/a"]
    assert fake.statuses[0].visibility == "unlisted"
    request = fake.requests[0]
    assert request.key == d.key and request.authorization == f"Bearer {TOKEN}"


async def test_401_and_403_stop_posting_with_help_for_the_operator(
    fake: FakeMastodon, client: MastodonClient, session: aiohttp.ClientSession
) -> None:
    fake.reject_credentials(True)
    revoked = await client.send(delivery())
    assert revoked == Outcome(OutcomeKind.AUTH, reason=f"HTTP 401: {INVALID_TOKEN}", status=401)
    fake.reject_credentials(False)

    wrong = await make_client(fake.base_url, session, token="not-the-token").send(delivery())
    assert (wrong.kind, wrong.status) == ("auth", 401)

    read_only = make_client(fake.base_url, session, token=READ_ONLY, env_suffix="_2")
    scoped = await read_only.send(delivery())
    assert scoped == Outcome(OutcomeKind.AUTH, reason=f"HTTP 403: {OUTSIDE_SCOPES}", status=403)
    assert fake.statuses == []

    help_text = read_only.broken_help[OutcomeKind.AUTH]
    for needed in ("MASTODON_ACCESS_TOKEN_2", "MASTODON_BASE_URL_2", "write:statuses",
                   "Preferences → Development → New application"):
        assert needed in help_text
    assert (await client.send(delivery())).kind == "sent"


async def test_an_empty_token_is_auth_without_asking(
    fake: FakeMastodon, session: aiohttp.ClientSession
) -> None:
    outcome = await make_client(fake.base_url, session, token="  ").send(delivery())
    assert outcome.kind == "auth" and "MASTODON_ACCESS_TOKEN" in outcome.reason
    assert fake.requests == []


async def test_too_long_fails_with_mastodons_message(
    fake: FakeMastodon, client: MastodonClient
) -> None:
    outcome = await client.send(delivery("x" * 501))
    assert outcome == Outcome(OutcomeKind.FAILED, reason=f"HTTP 422: {too_long_message(500)}",
                              status=422)
    assert outcome.reason == "HTTP 422: Validation failed: Text character limit of 500 exceeded"
    blank = await client.send(delivery("   "))
    assert blank == Outcome(OutcomeKind.FAILED, reason=f"HTTP 422: {BLANK_TEXT}", status=422)
    assert fake.statuses == []


def _in(seconds: float) -> float:
    return time.time() + seconds


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(lambda: Fault.rate_limited(reset=_in(120)), 120, id="iso-reset"),
        pytest.param(lambda: Fault.rate_limited(reset_header=str(int(_in(60)))), 60,
                     id="epoch-reset"),
        pytest.param(lambda: Fault.rate_limited(headers=False, retry_after=30), 30,
                     id="retry-after-only"),
        pytest.param(lambda: Fault.rate_limited(reset=_in(-10)), None,
                     id="reset-in-the-past-means-backoff"),
        pytest.param(lambda: Fault.rate_limited(reset=_in(-10), retry_after=20), 20,
                     id="past-reset-then-retry-after"),
        pytest.param(lambda: Fault.rate_limited(reset_header="soon"), None, id="garbage"),
        pytest.param(lambda: Fault.rate_limited(headers=False), None, id="no-headers"),
    ],
)
async def test_429_names_when_the_wall_ends(
    fake: FakeMastodon, client: MastodonClient, fault: Callable[[], Fault],
    expected: float | None
) -> None:
    fake.faults.append(fault())
    before = time.time()
    outcome = await client.send(delivery())
    assert (outcome.kind, outcome.status) == ("rate_limited", 429)
    assert outcome.reason == "HTTP 429: Too many requests"
    if expected is None:
        assert outcome.retry_at is None
    else:
        assert outcome.retry_at is not None
        assert before + expected - 1 <= outcome.retry_at <= time.time() + expected + 1
    assert fake.statuses == []


def test_rate_limit_reset_reads_mastodons_iso_timestamp_exactly() -> None:
    now = 1_800_000_000.0
    assert rate_limit_reset({"X-RateLimit-Reset": iso_reset(now + 90.25)}, now) \
        == pytest.approx(now + 90.25, abs=1e-6)
    assert rate_limit_reset({"X-RateLimit-Reset": "2027-01-15T10:00:00+01:00"}, now) \
        == datetime(2027, 1, 15, 9, 0, tzinfo=UTC).timestamp() == now + 3600
    assert rate_limit_reset({"X-RateLimit-Reset": "45"}, now) == now + 45  # seconds from now
    assert rate_limit_reset({"X-RateLimit-Reset": iso_reset(now)}, now) is None
    assert rate_limit_reset({"X-RateLimit-Reset": "nan", "Retry-After": "0"}, now) is None


@pytest.mark.parametrize(
    ("fault", "kind", "reason"),
    [
        pytest.param(Fault.error(500, "Internal server error"), "retry",
                     "HTTP 500: Internal server error", id="500-json"),
        pytest.param(Fault.server_error_html(502), "retry",
                     "HTTP 502: non-JSON body: HTML page: 502 Bad Gateway", id="502-html"),
        pytest.param(Fault.status(503, ""), "retry", "HTTP 503: empty body", id="503-empty"),
        pytest.param(Fault.status(404, "<html><title>Not Found</title></html>", None,
                                  "text/html"), "retry", "HTTP 404: non-JSON body: HTML page: "
                     "Not Found", id="404-wrong-base-url"),
        pytest.param(Fault.error(405, "Method not allowed"), "retry",
                     "HTTP 405: Method not allowed", id="405"),
        pytest.param(Fault.status(200, {"content": "<p>hi</p>"}), "retry",
                     "HTTP 200: answer without a status id", id="200-without-id"),
        pytest.param(Fault.status(200, "OK"), "retry", "HTTP 200: non-JSON body: OK",
                     id="200-not-json"),
        pytest.param(Fault.status(400, "x" * 300), "retry",
                     "HTTP 400: non-JSON body: " + "x" * 120, id="400-not-mastodons-verdict"),
        pytest.param(Fault.error(400, "status is missing"), "failed",
                     "HTTP 400: status is missing", id="400-json"),
        pytest.param(Fault.status(301, "", {"Location": "https://social.example/api/v1/s"}),
                     "retry", "HTTP 301: redirected to https://social.example/api/v1/s: set "
                     "MASTODON_BASE_URL to the instance's own https:// address", id="301"),
        pytest.param(Fault.forbidden("Your login is currently disabled"), "auth",
                     "HTTP 403: Your login is currently disabled", id="403-disabled"),
    ],
)
async def test_each_answer_maps_to_its_outcome(
    fake: FakeMastodon, client: MastodonClient, fault: Fault, kind: str, reason: str
) -> None:
    fake.faults.append(fault)
    outcome = await client.send(delivery())
    assert (outcome.kind, outcome.reason, outcome.status) == (kind, reason, fault.code)
    assert fake.statuses == []
    assert (await client.send(delivery())).kind == "sent"  # the connection was not leaked


async def test_a_cut_connection_is_retry(fake: FakeMastodon, client: MastodonClient) -> None:
    fake.faults.extend([Fault.cut_before(), Fault.cut_after()])
    before = await client.send(delivery("one"))
    assert before.kind == "retry" and before.reason.startswith("connection error: ")
    assert fake.statuses == []
    after = await client.send(delivery("two"))
    assert after.kind == "retry" and after.status is None
    assert fake.texts() == ["two"]  # it landed: only the key makes the retry safe


async def test_a_slow_instance_is_retry_within_the_timeout(
    fake: FakeMastodon, session: aiohttp.ClientSession
) -> None:
    fake.faults.append(Fault.slow(0.6))
    client = make_client(fake.base_url, session, timeout=0.2)
    started = time.monotonic()
    outcome = await client.send(delivery())
    assert time.monotonic() - started < 0.45
    assert outcome == Outcome(OutcomeKind.RETRY, reason="no answer from Mastodon within 0.2 s")


async def test_no_answer_at_all_is_retry(session: aiohttp.ClientSession) -> None:
    outcome = await make_client(closed_port_url(), session).send(delivery())
    assert outcome.kind == "retry" and outcome.reason.startswith("connection error: ")


# -- idempotency -------------------------------------------------------------------------


async def test_a_retry_after_a_lost_answer_gets_the_same_status_not_a_second(
    fake: FakeMastodon, client: MastodonClient
) -> None:
    d = delivery("Posted, but the answer was lost https://example.org/lost")
    fake.faults.append(Fault.cut_after())
    assert (await client.send(d)).kind == "retry"
    retry = await client.send(Delivery(d.post_id, d.text, d.key, attempts=1))
    assert retry.kind == "sent"
    assert len(fake.statuses) == 1 and retry.tweet_id == fake.statuses[0].id
    assert fake.requests[1].replayed

    other = await client.send(delivery(d.text))  # another post with the same text
    assert other.kind == "sent" and other.tweet_id != retry.tweet_id
    assert fake.texts() == [d.text, d.text]


async def test_a_retry_while_the_first_attempt_is_still_running_is_answered_later(
    fake: FakeMastodon, session: aiohttp.ClientSession
) -> None:
    client = make_client(fake.base_url, session, timeout=0.2)
    d = delivery()
    fake.faults.append(Fault.slow(0.4))
    assert (await client.send(d)).kind == "retry"  # timed out; Mastodon goes on with it
    busy = await client.send(d)  # the key's lock is held: Mastodon answers 503
    assert (busy.kind, busy.status) == ("retry", 503)
    await fake.wait_for_statuses(1, timeout=2)
    done = await client.send(d)
    assert done.kind == "sent" and done.tweet_id == fake.statuses[0].id
    assert len(fake.statuses) == 1


async def test_a_status_deleted_since_is_not_posted_again(
    fake: FakeMastodon, client: MastodonClient
) -> None:
    d = delivery()
    sent = await client.send(d)
    assert sent.tweet_id is not None
    fake.delete_status(sent.tweet_id)
    again = await client.send(Delivery(d.post_id, d.text, d.key, attempts=1))
    assert (again.kind, again.status) == ("duplicate", 404)
    assert again.reason.startswith("HTTP 404: Record not found: ")
    assert fake.statuses == []


async def test_mastodon_forgets_a_key_after_an_hour(session: aiohttp.ClientSession) -> None:
    now = [1_800_000_000.0]
    async with FakeMastodon(token=TOKEN, clock=lambda: now[0]) as fake:
        client = make_client(fake.base_url, session)
        d = delivery()
        first = await client.send(d)
        now[0] += 3599
        assert (await client.send(d)).tweet_id == first.tweet_id
        now[0] += 2
        late = await client.send(d)
        assert late.kind == "sent" and late.tweet_id != first.tweet_id
        assert len(fake.statuses) == 2


# -- secrets -----------------------------------------------------------------------------


async def test_the_token_never_appears_in_a_reason_a_log_or_a_repr(
    fake: FakeMastodon, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(fake.base_url, session, timeout=0.3)
    fake.faults.extend([
        Fault.status(400, f"Bad header Authorization: Bearer {TOKEN}"),  # an echoing proxy
        Fault.error(500, f"token {TOKEN} made us crash"),
        Fault.status(502, f"<html><title>{TOKEN}</title></html>", None, "text/html"),
        Fault.error(401, f"The access token {TOKEN} was revoked"),
        Fault.rate_limited(reset_header=TOKEN),
        Fault.cut_before(),
        Fault.slow(0.5),
    ])
    outcomes = [await client.send(delivery()) for _ in range(7)]
    fake.reject_credentials(True)
    outcomes.append(await client.send(delivery()))
    outcomes.append(await make_client(closed_port_url(), session).send(delivery()))
    outcomes.append(await make_client("not a url", session).send(delivery()))
    problems = [(await make_client(url, session).limits())[2]
                for url in (closed_port_url(), "not a url")]
    assert [o.kind for o in outcomes] == ["retry", "retry", "retry", "auth", "rate_limited",
                                          "retry", "retry", "auth", "retry", "retry"]
    for text in [*map(repr, outcomes), *map(str, problems), repr(client), caplog.text]:
        assert TOKEN not in text
    assert "***" in outcomes[0].reason and "***" in outcomes[1].reason


# -- the instance's limits ---------------------------------------------------------------


async def test_limits_come_from_v2_then_v1_then_an_old_forks_max_toot_chars(
    fake: FakeMastodon, client: MastodonClient
) -> None:
    fake.max_characters, fake.characters_reserved_per_url = 5000, 30
    assert await client.limits() == (5000, 30, None)
    fake.instance_style = "v1"
    assert await client.limits() == (5000, 30, None)
    fake.instance_style = "legacy"
    assert await client.limits() == (5000, 23, None)


async def test_unbelievable_limits_fall_back_to_the_defaults_with_a_reason(
    fake: FakeMastodon, client: MastodonClient
) -> None:
    fake.max_characters = 10**9
    max_characters, per_url, problem = await client.limits()
    assert (max_characters, per_url) == (500, 23)
    assert problem is not None and "unbelievable limits" in problem
    assert "assuming 500 characters and 23 per link" in problem


async def test_limits_of_an_unreachable_or_not_mastodon_server_are_the_defaults(
    session: aiohttp.ClientSession
) -> None:
    gone = await make_client(closed_port_url(), session).limits()
    assert gone[:2] == (500, 23)
    assert gone[2] is not None and "GET /api/v2/instance: unreachable" in gone[2]

    async def blog(request: web.Request) -> web.Response:
        if request.path == "/api/v1/instance":
            return web.Response(text="<html><title>My blog</title></html>",
                                content_type="text/html")
        if request.path == "/slow/api/v2/instance":
            await asyncio.sleep(1)
        return web.Response(status=404, text="nope")

    app = web.Application()
    app.router.add_get("/{tail:.*}", blog)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        blog_limits = await make_client(url, session).limits()
        assert blog_limits[:2] == (500, 23)
        assert blog_limits[2] is not None
        assert "GET /api/v2/instance: HTTP 404 (non-JSON body: nope)" in blog_limits[2]
        assert "GET /api/v1/instance: not a Mastodon instance document (non-JSON body: " \
            "HTML page: My blog)" in blog_limits[2]

        started = time.monotonic()
        slow = await make_client(url + "/slow", session, timeout=0.2).limits()
        assert time.monotonic() - started < 0.5
        assert slow[:2] == (500, 23) and "no answer within 0.2 s" in (slow[2] or "")
    finally:
        await runner.cleanup()


# -- the fake itself, over plain HTTP ----------------------------------------------------


async def test_the_fake_replays_an_idempotency_key_and_counts_like_mastodon(
    fake: FakeMastodon, session: aiohttp.ClientSession
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def post(body: dict[str, str], *, form: bool = False,
                   **headers: str) -> tuple[int, dict[str, object]]:
        request = session.post(fake.statuses_url, headers={**auth, **headers},
                               data=body if form else None, json=None if form else body)
        async with request as response:
            return response.status, await response.json()

    # a form body, twice with one key: one status, the same answer
    key = {"Idempotency-Key": "k1"}
    first = await post({"status": "Hi there", "visibility": "private"}, form=True, **key)
    again = await post({"status": "Something else"}, form=True, **key)
    assert first[0] == again[0] == 200 and first[1] == again[1]
    assert first[1]["visibility"] == "private" and first[1]["content"] == "<p>Hi there</p>"
    assert fake.texts() == ["Hi there"]

    # a URL with a scheme counts 23 however long it is; a bare domain counts in full
    link = "https://example.org/" + "p" * 100
    assert (await post({"status": "a" * 476 + " " + link}))[0] == 200  # 476 + 1 + 23
    assert (await post({"status": "a" * 477 + " " + link}))[0] == 422
    bare = "example.org/" + "p" * 20
    assert (await post({"status": "a" * (499 - len(bare)) + " " + bare}))[0] == 200
    assert (await post({"status": "a" * (500 - len(bare)) + " " + bare}))[0] == 422
    # grapheme clusters: a family emoji (5 code points) is one character
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert (await post({"status": family * 500}))[0] == 200
    status, body = await post({"status": family * 501})
    assert (status, body) == (422, {"error": too_long_message(500)})
    assert await post({"visibility": "public"}) == (422, {"error": BLANK_TEXT})

    async with session.post(fake.statuses_url, json={"status": "x"}) as response:
        assert (response.status, await response.json()) == (401, {"error": INVALID_TOKEN})


async def test_the_standalone_fake_serves_is_steered_and_prints_its_ledger(
    session: aiohttp.ClientSession
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.fake_mastodon", "--port", "0", "--token", TOKEN,
        "--max-characters", "40", cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
        assert line.startswith("FAKE_MASTODON_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        client = make_client(url, session)
        assert await client.limits() == (40, 23, None)

        async with session.post(url + "/_control", json={"faults": [
                {"kind": "rate_limited"}, {"kind": "server_error_html", "code": 504}]}) as r:
            assert (await r.json())["pending_faults"] == 2
        walled = await client.send(delivery())
        assert walled.kind == "rate_limited" and walled.retry_at is not None
        assert walled.retry_at > time.time()
        assert (await client.send(delivery())).reason == \
            "HTTP 504: non-JSON body: HTML page: 504 Gateway Time-out"
        assert (await client.send(delivery("Short post"))).kind == "sent"
        async with session.get(url + "/_ledger") as r:
            assert await r.json() == ["Short post"]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0
    assert out.decode().strip().splitlines()[-1] == "LEDGER " + json.dumps(["Short post"])
