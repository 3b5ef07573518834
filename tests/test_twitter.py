"""XClient against the loopback fake X: every kind of answer becomes the right Outcome."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from email.utils import formatdate

import aiohttp
import pytest
from multidict import CIMultiDict

from bot.twitter import BROKEN_HELP, Outcome, OutcomeKind, XClient, rate_limit_reset
from tests.conftest import CREDENTIALS, SECRETS
from tests.fakes.fake_x import CREDITS_DETAIL, DUPLICATE_DETAIL, FakeX, Fault


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # One connection only: a request that leaked its connection would block the next one.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
        yield s


def make_client(fake: FakeX, session: aiohttp.ClientSession, *, timeout: float = 10.0,
                **credentials: str) -> XClient:
    creds = {
        "api_key": CREDENTIALS["TWITTER_API_KEY"],
        "api_secret": CREDENTIALS["TWITTER_API_SECRET"],
        "access_token": CREDENTIALS["TWITTER_ACCESS_TOKEN"],
        "access_token_secret": CREDENTIALS["TWITTER_ACCESS_TOKEN_SECRET"],
        **credentials,
    }
    return XClient(base_url=fake.base_url, session=session, timeout=timeout,
                   **creds)  # type: ignore[arg-type]


def assert_no_secret(outcome: Outcome) -> None:
    for secret in SECRETS:
        assert secret not in repr(outcome)


@pytest.fixture
async def x(fake_x: FakeX, session: aiohttp.ClientSession) -> XClient:
    return make_client(fake_x, session)


async def test_201_is_sent_with_the_tweet_id(fake_x: FakeX, x: XClient) -> None:
    outcome = await x.post("Hello world https://example.org/1")
    assert outcome.kind == "sent"
    assert outcome.status == 201
    assert outcome.tweet_id == fake_x.ledger[0].id
    assert fake_x.texts() == ["Hello world https://example.org/1"]
    assert fake_x.requests[0].signature_ok


async def test_duplicate_403_is_settled_not_failed(fake_x: FakeX, x: XClient) -> None:
    assert (await x.post("Same text")).kind == "sent"
    outcome = await x.post("Same text")
    assert outcome == Outcome("duplicate", reason=f"HTTP 403: {DUPLICATE_DETAIL}", status=403)
    assert len(fake_x.ledger) == 1


async def test_a_read_only_token_stops_posting_instead_of_failing_each_post(
    fake_x: FakeX, x: XClient
) -> None:
    fake_x.faults.append(Fault.forbidden())
    outcome = await x.post("Read-only token")
    assert outcome.kind == "auth" and outcome.status == 403  # the gate closes, posts wait
    assert "oauth1 app permissions" in outcome.reason
    assert fake_x.ledger == []


async def test_other_403_fails_with_xs_message(fake_x: FakeX, x: XClient) -> None:
    fake_x.faults.append(Fault.forbidden("You are not permitted to perform this action.",
                                         type="about:blank"))
    outcome = await x.post("Forbidden text")
    assert outcome.kind == "failed" and outcome.status == 403
    assert "not permitted" in outcome.reason
    assert fake_x.ledger == []


async def test_400_fails_with_xs_message(fake_x: FakeX, x: XClient) -> None:
    fake_x.faults.append(Fault.bad_request("The `text` field is invalid."))
    outcome = await x.post("Bad")
    assert outcome == Outcome("failed", reason="HTTP 400: The `text` field is invalid.",
                              status=400)


async def test_400_with_a_plain_text_body_still_fails_readably(fake_x: FakeX, x: XClient) -> None:
    fake_x.faults.append(Fault.status(400, "Bad request, friend", content_type="text/plain"))
    outcome = await x.post("Bad")
    assert outcome.kind == "failed"
    assert outcome.reason == "HTTP 400: non-JSON body: Bad request, friend"


async def test_401_is_auth_whether_revoked_or_badly_signed(
    fake_x: FakeX, x: XClient, session: aiohttp.ClientSession
) -> None:
    fake_x.reject_credentials(True)
    outcome = await x.post("Revoked")
    assert outcome.kind == "auth" and outcome.status == 401
    assert_no_secret(outcome)
    fake_x.reject_credentials(False)

    wrong = make_client(fake_x, session, api_secret="not-the-secret")
    outcome = await wrong.post("Wrong secret")
    assert outcome.kind == "auth"
    assert fake_x.ledger == []
    assert (await x.post("Fixed")).kind == "sent"


async def test_402_is_credits(fake_x: FakeX, x: XClient) -> None:
    fake_x.faults.append(Fault.payment_required())
    outcome = await x.post("No credits")
    assert outcome == Outcome("credits", reason=f"HTTP 402: {CREDITS_DETAIL}", status=402)


def _in(seconds: float) -> float:
    return time.time() + seconds


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(lambda: Fault.rate_limited(reset_15min=_in(900)), 900, id="15min-only"),
        pytest.param(lambda: Fault.rate_limited(reset_15min=_in(900), user_24h_remaining=0,
                                                user_24h_reset=_in(5)), 5,
                     id="24h-user-spent-wins-over-15min"),
        pytest.param(lambda: Fault.rate_limited(reset_15min=_in(900), app_24h_remaining=0,
                                                app_24h_reset=_in(7)), 7,
                     id="24h-app-spent-wins-over-15min"),
        pytest.param(lambda: Fault.rate_limited(reset_15min=_in(60), user_24h_remaining=3,
                                                user_24h_reset=_in(50_000)), 60,
                     id="24h-not-spent-15min-counts"),
        pytest.param(lambda: Fault.rate_limited(reset_15min=_in(900), user_24h_remaining=0,
                                                user_24h_reset=_in(-30)), 900,
                     id="24h-reset-already-past-falls-through"),
        pytest.param(lambda: Fault.rate_limited(retry_after=30), 30, id="retry-after-only"),
        pytest.param(lambda: Fault.rate_limited(reset_15min=_in(-10)), None,
                     id="15min-reset-in-the-past-means-backoff"),
        pytest.param(lambda: Fault.rate_limited(reset_15min=_in(-10), retry_after=20), 20,
                     id="past-reset-then-retry-after"),
        pytest.param(lambda: Fault.rate_limited(), None, id="no-headers"),
    ],
)
async def test_429_names_when_the_wall_ends(
    fake_x: FakeX, x: XClient, fault: object, expected: float | None
) -> None:
    fake_x.faults.append(fault())  # type: ignore[operator]
    before = time.time()
    outcome = await x.post("Walled")
    assert outcome.kind == "rate_limited" and outcome.status == 429
    assert outcome.reason == "HTTP 429: Too Many Requests"
    if expected is None:
        assert outcome.retry_at is None
    else:
        assert outcome.retry_at is not None
        # headers carry whole seconds, rounded up
        assert before + expected - 1 <= outcome.retry_at <= time.time() + expected + 1.5


def test_rate_limit_reset_edge_cases() -> None:
    now = 1_800_000_000.0
    h = CIMultiDict
    assert rate_limit_reset(h({"Retry-After": formatdate(now + 120, usegmt=True)}), now) \
        == pytest.approx(now + 120)
    assert rate_limit_reset(h({"retry-after": "soon"}), now) is None
    assert rate_limit_reset(h({"retry-after": "0"}), now) is None
    assert rate_limit_reset(h({"x-rate-limit-reset": "inf"}), now) is None
    assert rate_limit_reset(h({"x-rate-limit-reset": "nan", "retry-after": "5"}), now) == now + 5
    assert rate_limit_reset(h({"x-rate-limit-reset": str(now)}), now) is None  # not a future
    # a spent 24-hour budget without a reset: the 15-minute reset is all we know
    assert rate_limit_reset(h({"x-user-limit-24hour-remaining": "0",
                               "x-rate-limit-reset": str(now + 60)}), now) == now + 60
    # user before app
    assert rate_limit_reset(h({"x-user-limit-24hour-remaining": "0",
                               "x-user-limit-24hour-reset": str(now + 10),
                               "x-app-limit-24hour-remaining": "0",
                               "x-app-limit-24hour-reset": str(now + 20)}), now) == now + 10


async def test_503_html_is_retry_with_a_readable_reason(fake_x: FakeX, x: XClient) -> None:
    fake_x.faults.append(Fault.server_error_html(503))
    outcome = await x.post("Proxy trouble")
    assert outcome.kind == "retry" and outcome.status == 503
    assert outcome.reason == "HTTP 503: non-JSON body: HTML page: 503 Service Temporarily " \
        "Unavailable"
    assert fake_x.ledger == []
    assert (await x.post("Proxy trouble")).kind == "sent"


async def test_5xx_json_and_empty_bodies_are_retry(fake_x: FakeX, x: XClient) -> None:
    fake_x.faults.append(Fault.status(500, {"title": "Internal", "detail": "Oops"}))
    fake_x.faults.append(Fault.status(502, ""))
    first, second = await x.post("A"), await x.post("B")
    assert (first.kind, first.reason) == ("retry", "HTTP 500: Oops")
    assert (second.kind, second.reason) == ("retry", "HTTP 502: empty body")


async def test_404_is_a_setting_to_fix_not_a_verdict_on_the_text(fake_x: FakeX,
                                                                 x: XClient) -> None:
    fake_x.faults.append(Fault.status(404, {"title": "Not Found", "detail": "no route"}))
    assert (await x.post("Lost")).kind == "retry"


async def test_2xx_that_is_not_xs_answer_is_retry(fake_x: FakeX, x: XClient) -> None:
    fake_x.faults.append(Fault.status(201, "<html>ok</html>", content_type="text/html"))
    fake_x.faults.append(Fault.status(201, {"data": {"text": "no id"}},
                                      content_type="application/json"))
    fake_x.faults.append(Fault.status(200, "[1, 2]", content_type="application/json"))
    for _ in range(3):
        outcome = await x.post("Odd")
        assert outcome.kind == "retry", outcome
        assert outcome.reason
    assert (await x.post("Odd")).kind == "sent"


async def test_cut_before_is_retry_and_nothing_was_posted(fake_x: FakeX, x: XClient) -> None:
    fake_x.faults.append(Fault.cut_before())
    outcome = await x.post("Cut early")
    assert outcome.kind == "retry" and outcome.reason.startswith("connection error:")
    assert fake_x.ledger == []
    assert (await x.post("Cut early")).kind == "sent"


async def test_cut_after_is_retry_then_the_duplicate_403_settles_it(fake_x: FakeX,
                                                                    x: XClient) -> None:
    fake_x.faults.append(Fault.cut_after())
    outcome = await x.post("Cut late")
    assert outcome.kind == "retry" and outcome.reason.startswith("connection error:")
    assert fake_x.texts() == ["Cut late"]  # X did post it
    assert (await x.post("Cut late")).kind == "duplicate"
    assert fake_x.texts() == ["Cut late"]


async def test_slow_answer_beyond_the_per_call_timeout_is_retry_and_frees_the_connection(
    fake_x: FakeX, session: aiohttp.ClientSession
) -> None:
    x = make_client(fake_x, session, timeout=0.5)
    fake_x.faults.append(Fault.slow(2.0))
    started = time.monotonic()
    outcome = await x.post("Slow")
    elapsed = time.monotonic() - started
    assert outcome.kind == "retry"
    assert outcome.reason == "no answer from X within 0.5 s"
    assert 0.4 <= elapsed < 1.5
    # The session has ONE connection: had the timed-out request kept it, this would hang.
    outcome = await x.post("Next one")
    assert outcome.kind == "sent", outcome
    # The slow request was still handled by X: the ambiguous attempt did post, and the
    # retry is settled by the duplicate 403.
    await fake_x.wait_for_tweets(2, timeout=5)
    assert (await x.post("Slow")).kind == "duplicate"


async def test_connection_refused_is_retry(session: aiohttp.ClientSession) -> None:
    fake = FakeX()
    await fake.start()
    url = fake.base_url
    await fake.close()
    x = XClient(api_key="k", api_secret=SECRETS[0], access_token="t",
                access_token_secret=SECRETS[1], base_url=url, session=session, timeout=5)
    outcome = await x.post("Nobody home")
    assert outcome.kind == "retry" and "connection error" in outcome.reason
    assert_no_secret(outcome)


async def test_no_secret_in_any_reason(fake_x: FakeX, x: XClient) -> None:
    faults = [
        Fault.rate_limited(reset_15min=_in(60)), Fault.server_error_html(502),
        Fault.cut_before(), Fault.cut_after(), Fault.payment_required(), Fault.forbidden(),
        Fault.bad_request(), Fault.status(500, "oops"),
    ]
    fake_x.faults.extend(faults)
    outcomes = [await x.post(f"Text {i}") for i in range(len(faults))]
    fake_x.reject_credentials(True)
    outcomes.append(await x.post("Revoked"))
    fake_x.reject_credentials(False)
    outcomes.append(await x.post("Text 3"))  # the cut_after one: duplicate
    kinds = [o.kind for o in outcomes]
    assert kinds == ["rate_limited", "retry", "retry", "retry", "credits", "auth", "failed",
                     "retry", "auth", "duplicate"]  # a read-only token's 403 is "auth" too
    for outcome in outcomes:
        assert outcome.reason
        assert_no_secret(outcome)


def test_retry_after_is_read_as_before_through_bot_times() -> None:
    """``Retry-After`` goes through :func:`bot.times.retry_after` (which clamps a past time
    to ``now``); only a time after ``now`` counts here, so past and negative values still mean
    "no answer: back off", as with the private parser this module had."""
    now = 1_800_000_000.0
    h = CIMultiDict
    assert rate_limit_reset(h({"retry-after": " 30 "}), now) == now + 30
    assert rate_limit_reset(h({"retry-after": "-5"}), now) is None
    assert rate_limit_reset(h({"retry-after": "inf"}), now) is None
    assert rate_limit_reset(h({"retry-after": ""}), now) is None
    assert rate_limit_reset(h({"retry-after": formatdate(now - 60, usegmt=True)}), now) is None
    assert rate_limit_reset(h({"retry-after": formatdate(now)}), now) is None  # "-0000": UTC
    assert rate_limit_reset(h({"retry-after": formatdate(now + 90)}), now) == now + 90
    assert rate_limit_reset(h({"retry-after": formatdate(now + 90, localtime=True)}),
                            now) == now + 90
    # a past Retry-After does not hide a later header's answer, nor shadow an earlier one
    assert rate_limit_reset(h({"x-rate-limit-reset": str(now + 40), "retry-after": "-1"}),
                            now) == now + 40


def test_outcome_kinds_keep_their_values() -> None:
    assert [k.value for k in OutcomeKind] == ["sent", "duplicate", "retry", "rate_limited",
                                             "auth", "credits", "failed"]
    assert Outcome("sent").kind is OutcomeKind.SENT  # plain strings are taken too
    with pytest.raises(ValueError):
        Outcome("posted")  # type: ignore[arg-type]
    assert set(BROKEN_HELP) == {OutcomeKind.AUTH, OutcomeKind.CREDITS}
