"""The Dispatcher with a real Store (SQLite on tmp_path) and XClient against the loopback
fake X: X's answers, the gate, the daily budget, crash recovery, shutdown.

Waits are real and short (1-5 s); a clock is injected only to jump a day ahead.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from bot.delivery import Delivery
from bot.dispatch import GATE_KEY, Backoff, Dispatcher, Gate
from bot.models import Entry
from bot.store import DuePass, NewPost, Post, Store
from bot.twitter import XClient
from tests.conftest import CREDENTIALS
from tests.fakes.fake_x import DUPLICATE_DETAIL, FakeX, Fault

FEED = "https://blog.example/feed.xml"
FAST = Backoff(base=0.3, cap=2.0)


class WallX(FakeX):
    """The fake X, plus a wall: until ``wall_until`` every post gets ``wall()``'s fault."""

    def __init__(self) -> None:
        super().__init__(consumer_key=CREDENTIALS["TWITTER_API_KEY"],
                         consumer_secret=CREDENTIALS["TWITTER_API_SECRET"],
                         access_token=CREDENTIALS["TWITTER_ACCESS_TOKEN"],
                         access_token_secret=CREDENTIALS["TWITTER_ACCESS_TOKEN_SECRET"])
        self.wall_until = 0.0
        self.wall: Callable[[], Fault] | None = None

    def _next_fault(self) -> Fault | None:
        if self.wall is not None and self.clock() < self.wall_until:
            return self.wall()
        return super()._next_fault()

    def requests_between(self, start: float, end: float) -> int:
        return sum(1 for r in self.requests if start <= r.time < end)


@pytest.fixture
async def fx() -> AsyncIterator[WallX]:
    async with WallX() as fake:
        yield fake


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(str(tmp_path / "bot.sqlite3"))
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def x(fx: WallX, session: aiohttp.ClientSession) -> XClient:
    return XClient(api_key=CREDENTIALS["TWITTER_API_KEY"],
                   api_secret=CREDENTIALS["TWITTER_API_SECRET"],
                   access_token=CREDENTIALS["TWITTER_ACCESS_TOKEN"],
                   access_token_secret=CREDENTIALS["TWITTER_ACCESS_TOKEN_SECRET"],
                   base_url=fx.base_url, session=session, timeout=10)


@pytest.fixture
async def dispatchers() -> AsyncIterator[list[Dispatcher]]:
    made: list[Dispatcher] = []
    yield made
    for d in made:
        await d.close(grace=0.5)


@pytest.fixture
def make(store: Store, x: XClient, dispatchers: list[Dispatcher]
         ) -> Callable[..., Awaitable[Dispatcher]]:
    async def factory(**kwargs: object) -> Dispatcher:
        kwargs.setdefault("backoff", FAST)
        kwargs.setdefault("rng", random.Random(7))
        d = Dispatcher(kwargs.pop("store", store), kwargs.pop("client", x),  # type: ignore[arg-type]
                       **kwargs)  # type: ignore[arg-type]
        dispatchers.append(d)
        await d.start()
        return d
    return factory


async def add_posts(store: Store, n: int, prefix: str, *, now: float | None = None) -> list[int]:
    now = time.time() if now is None else now
    await store.sync_env_feeds([FEED], now)
    feed = await store.feed_by_url(FEED)
    assert feed is not None
    items = [NewPost(Entry(id=f"{prefix}-{i}", link=f"https://blog.example/{prefix}/{i}",
                           title=f"{prefix} {i}"),
                     f"{prefix} {i} https://blog.example/{prefix}/{i}") for i in range(n)]
    return await store.record_poll(feed.id, items, now)


async def posts(store: Store, ids: list[int]) -> list[Post]:
    found = [await store.post(i) for i in ids]
    assert all(p is not None for p in found)
    return found  # type: ignore[return-value]


async def wait_until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.05)


async def all_in(store: Store, ids: list[int], *states: str) -> bool:
    return all(p.state in states for p in await posts(store, ids))


# -- 429: one gate for every post ------------------------------------------------------------


async def test_a_spent_24h_budget_5s_away_wins_over_a_15min_reset(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    start = time.time()
    fx.wall_until = start + 5
    fx.wall = lambda: Fault.rate_limited(reset_15min=start + 900, user_24h_remaining=0,
                                         user_24h_reset=start + 5)
    fx.delay = 0.5
    ids = await add_posts(store, 6, "wall")
    d = await make(max_concurrent=4)

    await wait_until(lambda: _true(d.gate.closed(time.time())), 3, "the gate closes")
    assert d.gate.reason == "rate_limited"
    assert start + 4 <= d.gate.until <= start + 6.5
    assert d.health()["gate"]["reason"] == "rate_limited"  # type: ignore[index]
    first_429 = min(r.time for r in fx.requests if r.status == 429)

    tweets = await fx.wait_for_tweets(6, timeout=20)
    first = tweets[0].at - start
    assert 4 <= first <= 9, f"first tweet after {first:.1f}s, expected about 5 s"
    # While the gate was closed no request was made but those already in flight
    # (one per post in flight: at most max_concurrent).
    walled = fx.requests_between(first_429, fx.wall_until)
    assert walled <= 4, [(r.time - start, r.status) for r in fx.requests]
    assert all(r.status == 429 for r in fx.requests if r.time < fx.wall_until)
    # after the probe succeeded, the usual concurrency came back: the last five posts went
    # out four at a time (about 2 x 0.5 s), not one after the other (5 x 0.5 s)
    assert tweets[-1].at - tweets[0].at < 1.9, [t.at - start for t in tweets]
    # X answering is not the end: the dispatcher records it a moment later
    await wait_until(lambda: all_in(store, ids, "sent"), 5, "all recorded as sent")
    assert [p.attempts for p in await posts(store, ids)] == [1] * 6  # 429s are not attempts
    assert d.gate == Gate()
    assert Gate.from_json(await store.get_meta(GATE_KEY)) == Gate()


async def _true(value: bool) -> bool:
    return value


async def test_retry_after_alone_is_honoured(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    start = time.time()
    fx.wall_until = start + 2
    fx.wall = lambda: Fault.rate_limited(retry_after=2)
    ids = await add_posts(store, 2, "ra")
    await make(max_concurrent=1)
    tweets = await fx.wait_for_tweets(2, timeout=10)
    assert 1.5 <= tweets[0].at - start <= 6
    assert fx.requests_between(start, start + 1.9) == 1  # one probe-less wait, no hammering
    await wait_until(lambda: all_in(store, ids, "sent"), 5, "all recorded as sent")


async def test_429_without_headers_backs_off_exponentially(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    fx.faults.extend([Fault.rate_limited(), Fault.rate_limited(), Fault.rate_limited()])
    ids = await add_posts(store, 1, "nohdr")
    await make(backoff=Backoff(base=0.5, cap=10))
    await fx.wait_for_tweets(1, timeout=15)
    times = [r.time for r in fx.requests]
    assert [r.status for r in fx.requests] == [429, 429, 429, 201]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # about 0.5, 1, 2 s (jitter 0.75-1.25)
    for gap, nominal in zip(gaps, (0.5, 1.0, 2.0), strict=True):
        assert nominal * 0.7 <= gap <= nominal * 1.25 + 0.6, gaps
    await wait_until(lambda: all_in(store, ids, "sent"), 5, "recorded as sent")


async def test_429_with_a_reset_already_past_backs_off_instead_of_hammering(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    fx.faults.append(Fault.rate_limited(reset_15min=time.time() - 30))
    await add_posts(store, 1, "past")
    await make(backoff=Backoff(base=1.0, cap=10))
    await fx.wait_for_tweets(1, timeout=10)
    gap = fx.requests[1].time - fx.requests[0].time
    assert 0.7 <= gap <= 2.0


async def test_the_gate_survives_a_restart(
    fx: WallX, tmp_path: Path, x: XClient, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    db = str(tmp_path / "restart.sqlite3")
    store = await Store.open(db)
    start = time.time()
    fx.faults.append(Fault.rate_limited(reset_15min=start + 60))
    ids = await add_posts(store, 2, "persist")
    d = await make(store=store, max_concurrent=1)
    await wait_until(lambda: _true(d.gate.closed(time.time())), 5, "the gate closes")
    until = d.gate.until
    await d.close()
    await store.close()

    store = await Store.open(db)
    try:
        again = await make(store=store)
        assert again.gate.closed(time.time())
        assert (again.gate.reason, again.gate.until) == ("rate_limited", until)
        await asyncio.sleep(1.0)
        assert len(fx.requests) == 1, "no request while the gate is closed, restart or not"
        assert await all_in(store, ids, "pending")
        await again.close()
    finally:
        await store.close()


# -- transient failures: retry; ambiguous outcomes settled by the duplicate 403 ---------------


async def test_503_html_then_success_is_sent_once(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    fx.faults.append(Fault.server_error_html(503))
    [pid] = await add_posts(store, 1, "html")
    d = await make()
    await wait_until(lambda: all_in(store, [pid], "sent"), 10, "sent")
    post = await store.post(pid)
    assert post is not None
    assert post.attempts == 2 and post.tweet_id == fx.ledger[0].id
    assert len(fx.ledger) == 1
    assert d.metrics.posts.labels("retry")._value.get() == 1


async def test_cut_after_is_retried_and_the_duplicate_403_settles_it_as_sent(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    fx.faults.append(Fault.cut_after())
    [pid] = await add_posts(store, 1, "cut")
    await make()
    await wait_until(lambda: all_in(store, [pid], "sent"), 10, "sent")
    post = await store.post(pid)
    assert post is not None
    assert post.last_error == "already on X (duplicate content)"
    assert post.attempts == 2
    assert len(fx.ledger) == 1
    assert [r.status for r in fx.requests] == [None, 403]


async def test_cut_before_and_slow_answers_are_retried(
    fx: WallX, store: Store, session: aiohttp.ClientSession,
    make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    impatient = XClient(api_key=CREDENTIALS["TWITTER_API_KEY"],
                        api_secret=CREDENTIALS["TWITTER_API_SECRET"],
                        access_token=CREDENTIALS["TWITTER_ACCESS_TOKEN"],
                        access_token_secret=CREDENTIALS["TWITTER_ACCESS_TOKEN_SECRET"],
                        base_url=fx.base_url, session=session, timeout=0.5)
    fx.faults.extend([Fault.cut_before(), Fault.slow(1.5)])
    ids = await add_posts(store, 2, "flaky")
    await make(client=impatient, max_concurrent=2)
    await wait_until(lambda: all_in(store, ids, "sent"), 15, "both sent")
    assert sorted(fx.texts()) == sorted(p.text for p in await posts(store, ids))
    assert len(fx.ledger) == 2


async def test_a_post_older_than_max_post_age_fails_instead_of_retrying(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    now = time.time()
    [old] = await add_posts(store, 1, "old", now=now - 10)
    fx.faults.append(Fault.server_error_html(502))
    d = await make(max_post_age=5, max_concurrent=1)
    await wait_until(lambda: all_in(store, [old], "failed"), 5, "failed")
    post = await store.post(old)
    assert post is not None
    assert post.last_error == ("gave up after 1 attempts: HTTP 502: non-JSON body: HTML page: "
                               "502 Service Temporarily Unavailable")
    # a young post with the same trouble is retried
    fx.faults.append(Fault.server_error_html(502))
    [young] = await add_posts(store, 1, "young")
    d.wake()  # what the worker does after recording new posts
    await wait_until(lambda: all_in(store, [young], "sent"), 10, "young one sent")


# -- 401 / 402: posting is broken; keep everything, say so, probe slowly ---------------------


@pytest.mark.parametrize("kind", ["auth", "credits"])
async def test_broken_credentials_keep_posts_pending_until_fixed(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]],
    caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    if kind == "auth":
        fx.reject_credentials(True)
    else:
        fx.wall_until = time.time() + 3600
        fx.wall = Fault.payment_required
    ids = await add_posts(store, 3, kind)
    start = time.time()
    d = await make(max_concurrent=4, auth_retry_interval=1.0)
    await wait_until(lambda: _true(d.health()["posting_broken"] is True), 5, "broken")
    assert d.health()["gate"]["reason"] == kind  # type: ignore[index]
    await asyncio.sleep(3.0)
    broken_for = time.time() - start
    assert await all_in(store, ids, "pending")
    assert [p.attempts for p in await posts(store, ids)] == [0, 0, 0]
    assert fx.ledger == []
    # the first posts in flight, then one probe per AUTH_RETRY_INTERVAL
    assert len(fx.requests) <= 3 + broken_for / 1.0 + 1, len(fx.requests)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "one ERROR when posting stops, not one per probe"
    # the first answer is one state change, said once (posting_stopped, no gate_closed too)
    first = [r.getMessage().split()[0] for r in caplog.records if r.created <= start + 1.0
             and r.getMessage().startswith(("posting_stopped", "gate_closed"))]
    assert first == ["posting_stopped"], first
    message = errors[0].getMessage()
    if kind == "auth":
        assert "TWITTER_ACCESS_TOKEN" in message and "read+write" in message
    else:
        assert "credits" in message

    fixed = time.time()
    fx.reject_credentials(False)
    fx.wall = None
    await fx.wait_for_tweets(3, timeout=5)
    assert fx.ledger[0].at - fixed <= 1.0 + 1.0  # within AUTH_RETRY_INTERVAL (+ slack)
    await wait_until(lambda: all_in(store, ids, "sent"), 5, "all sent")
    assert d.health()["posting_broken"] is False


async def test_a_restart_probes_at_once_after_posting_was_broken(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    await store.set_meta(GATE_KEY, Gate(time.time() + 300, "auth", "check the token").to_json())
    ids = await add_posts(store, 2, "fixedtoken")
    d = await make(auth_retry_interval=300)
    assert d.health()["posting_broken"] is True  # until X accepts a post
    await wait_until(lambda: all_in(store, ids, "sent"), 5, "sent after the restart")
    assert d.health()["posting_broken"] is False


# -- 400 / other 403: this post failed, the others go on ---------------------------------------


async def test_400_fails_that_post_with_xs_message_and_the_others_go_out(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    fx.faults.append(Fault.bad_request("The `text` field is invalid."))
    fx.faults.append(Fault.forbidden("You are not permitted to perform this action.",
                                     type="about:blank"))
    ids = await add_posts(store, 4, "mixed")
    await make(max_concurrent=1)
    await wait_until(lambda: all_in(store, ids, "sent", "failed"), 10, "all settled")
    found = await posts(store, ids)
    assert [p.state for p in found] == ["failed", "failed", "sent", "sent"]
    assert found[0].last_error == "HTTP 400: The `text` field is invalid."
    assert found[1].last_error is not None and "not permitted" in found[1].last_error
    assert len(fx.ledger) == 2


# -- MAX_POSTS_PER_DAY: wait, oldest first ----------------------------------------------------


async def test_daily_budget_holds_the_rest_oldest_first_then_resumes_at_full_speed(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    ids = await add_posts(store, 5, "budget")
    d = await make(max_per_day=2, max_concurrent=4, clock=clock)
    await fx.wait_for_tweets(2, timeout=5)
    await wait_until(lambda: _true(d.gate.reason == "daily_budget"), 5, "budget gate")
    await asyncio.sleep(0.5)
    found = await posts(store, ids)
    assert [p.state for p in found] == ["sent", "sent", "pending", "pending", "pending"]
    assert len(fx.requests) == 2
    assert d.health()["gate"]["reason"] == "daily_budget"  # type: ignore[index]
    first_sent = found[0].sent_at
    assert first_sent is not None
    assert d.gate.until == pytest.approx(first_sent + 86400)

    # a day later: two more, together (the budget is ours: no one-at-a-time probing)
    fx.delay = 0.5
    fx.max_in_flight = 0
    offset[0] = 86400 + 1
    d.wake()
    await fx.wait_for_tweets(4, timeout=5)
    assert fx.max_in_flight == 2
    await asyncio.sleep(0.5)
    found = await posts(store, ids)
    assert [p.state for p in found] == ["sent", "sent", "sent", "sent", "pending"]
    assert d.gate.reason == "daily_budget"


async def test_a_monthly_spend_cap_holds_posts_until_the_30_day_window_has_room(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    """X_MAX_SPEND_PER_MONTH=1.00 at X_COST_PER_POST=0.25: four posts in 30 days, then
    the gate closes (spend_budget) and the rest wait, pending, never dropped."""
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    ids = await add_posts(store, 6, "spend")
    d = await make(max_spend_per_month=1.0, cost_per_post=0.25, max_concurrent=1,
                   clock=clock)
    await fx.wait_for_tweets(4, timeout=10)
    await wait_until(lambda: _true(d.gate.reason == "spend_budget"), 5, "spend gate")
    await asyncio.sleep(0.5)
    found = await posts(store, ids)
    assert [p.state for p in found] == ["sent"] * 4 + ["pending"] * 2
    assert len(fx.requests) == 4
    detail = d.health()["gate"]["detail"]  # type: ignore[index]
    assert "X_MAX_SPEND_PER_MONTH=1 reached (4 posts in 30 days" in detail
    assert found[0].sent_at is not None
    assert d.gate.until == pytest.approx(found[0].sent_at + 30 * 86400)

    offset[0] = 30 * 86400 + 1  # the first posts leave the window: the rest go out
    d.wake()
    await fx.wait_for_tweets(6, timeout=10)
    await wait_until(lambda: all_in(store, ids, "sent"), 5, "all sent")


async def test_daily_budget_notices_a_retry_coming_due_without_a_wake_up(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    fx.faults.append(Fault.server_error_html(503))
    ids = await add_posts(store, 3, "budgetretry")
    d = await make(max_per_day=2, max_concurrent=1, backoff=Backoff(base=1.0, cap=2.0))
    # the first post fails and waits ~1 s; the two others use up the budget meanwhile
    await fx.wait_for_tweets(2, timeout=5)
    await wait_until(lambda: _true(d.gate.reason == "daily_budget"), 4,
                     "the gate closes once the retry is due, with nobody calling wake()")
    assert [p.state for p in await posts(store, ids)] == ["pending", "sent", "sent"]
    assert len(fx.requests) == 3

    # restarted without a budget: the old budget gate does not hold the post back
    await d.close()
    await make(max_per_day=None)
    await wait_until(lambda: all_in(store, ids, "sent"), 5, "sent without a budget")


# -- the operator's `bot posts retry`, from another process ---------------------------------


async def test_a_failed_post_queued_again_by_the_cli_is_sent_by_the_running_service(
    fx: WallX, store: Store, tmp_path: Path, make: Callable[..., Awaitable[Dispatcher]],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.dispatch.IDLE_RECHECK", 0.5)
    fx.faults.append(Fault.bad_request("The `text` field is invalid."))
    [pid] = await add_posts(store, 1, "again")
    await make()
    await wait_until(lambda: all_in(store, [pid], "failed"), 5, "failed")

    cli = await Store.open(str(tmp_path / "bot.sqlite3"))  # what `bot posts retry ID` does
    try:
        assert await cli.retry_failed([pid]) == 1
    finally:
        await cli.close()
    await wait_until(lambda: all_in(store, [pid], "sent"), 5, "sent without a wake-up")
    post = await store.post(pid)
    assert post is not None and post.attempts == 2  # the failed one is kept, and this one


# -- crashes and shutdown ------------------------------------------------------------------------


async def test_a_post_left_sending_by_a_crash_is_sent_at_start(
    fx: WallX, store: Store, x: XClient, make: Callable[..., Awaitable[Dispatcher]],
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.dispatch")
    never_sent, ambiguous = await add_posts(store, 2, "crash")
    # killed after the claim: one before its request left, one after X posted it
    assert await store.claim(never_sent)
    assert await store.claim(ambiguous)
    post = await store.post(ambiguous)
    assert post is not None
    assert (await x.post(post.text)).kind == "sent"

    await make()
    await wait_until(lambda: all_in(store, [never_sent, ambiguous], "sent"), 5, "both sent")
    assert "posts_requeued count=2" in caplog.text
    assert len(fx.ledger) == 2  # each once
    assert fx.requests[-1].status in (201, 403)
    settled = await store.post(ambiguous)
    assert settled is not None and settled.last_error == "already on X (duplicate content)"
    assert DUPLICATE_DETAIL  # the fake's 403 is X's


async def test_shutdown_leaves_unanswered_posts_pending(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    fx.delay = 5
    ids = await add_posts(store, 2, "shutdown")
    d = await make(max_concurrent=2)
    await wait_until(lambda: _true(fx.in_flight == 2), 5, "two in flight")
    started = time.monotonic()
    await d.close(grace=0.3)
    assert time.monotonic() - started < 2
    found = await posts(store, ids)
    assert [p.state for p in found] == ["pending", "pending"]
    assert all(p.last_error == "interrupted by shutdown" for p in found)


async def test_the_pump_survives_an_unexpected_error(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("bot.dispatch.PUMP_ERROR_PAUSE", 0.3)
    real = store.claim_due
    calls = [0]

    async def flaky(*args: object, **kwargs: object) -> DuePass:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("disk I/O error")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "claim_due", flaky)
    ids = await add_posts(store, 1, "pump")
    with caplog.at_level(logging.ERROR, logger="bot.dispatch"):
        await make()
        await wait_until(lambda: all_in(store, ids, "sent"), 5, "sent despite the error")
    assert "dispatch_pass_failed" in caplog.text


async def test_drain_waits_for_what_is_due_and_in_flight(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]]
) -> None:
    fx.delay = 0.3
    d = await make(max_concurrent=2)
    ids = await add_posts(store, 5, "drain")
    await d.drain(timeout=10)  # no wake() from the caller: drain looks for itself
    assert await all_in(store, ids, "sent")
    assert d.in_flight == 0


async def test_closing_while_posts_are_being_claimed_puts_them_back_untried(
    fx: WallX, store: Store, make: Callable[..., Awaitable[Dispatcher]],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store.claim_due
    claimed = asyncio.Event()

    async def slow(*args: object, **kwargs: object) -> DuePass:
        batch = await real(*args, **kwargs)  # type: ignore[arg-type]
        claimed.set()  # committed on the database thread; the answer is still on its way
        await asyncio.sleep(0.5)
        return batch

    monkeypatch.setattr(store, "claim_due", slow)
    ids = await add_posts(store, 3, "closing")
    d = await make(max_concurrent=4)
    await asyncio.wait_for(claimed.wait(), 5)
    await d.close(grace=1)
    found = await posts(store, ids)
    assert [(p.state, p.attempts) for p in found] == [("pending", 0)] * 3
    assert fx.requests == [], "nothing was sent"


async def test_a_post_that_crashes_the_client_never_stops_the_others(
    fx: WallX, store: Store, x: XClient, make: Callable[..., Awaitable[Dispatcher]],
    caplog: pytest.LogCaptureFixture
) -> None:
    class Poisoned:
        """X's client, except that one text makes it raise (a bug that text brings out)."""

        async def send(self, delivery: Delivery) -> object:
            text = delivery.text
            if "poison" in text:
                raise UnicodeEncodeError("utf-8", text, 0, 1, "surrogates not allowed")
            return await x.post(text)

    ids = await add_posts(store, 2, "good")
    poison = await add_posts(store, 1, "poison")
    ids += await add_posts(store, 2, "later")
    with caplog.at_level(logging.ERROR, logger="bot.dispatch"):
        await make(client=Poisoned(), max_concurrent=1, max_post_age=1.5)
        await wait_until(lambda: all_in(store, ids, "sent"), 10, "the good posts sent")
        await wait_until(lambda: all_in(store, poison, "failed"), 10, "the poison post failed")
    assert sorted(t.text for t in fx.ledger) == sorted(p.text for p in await posts(store, ids))
    (bad,) = await posts(store, poison)
    assert bad.last_error is not None and "internal error: UnicodeEncodeError" in bad.last_error
    assert "post_crashed" in caplog.text


# -- a network that is down ------------------------------------------------------------------


async def test_a_network_that_is_down_is_probed_by_one_post_and_its_backlog_goes_oldest_first(
    store: Store, make: Callable[..., Awaitable[Dispatcher]], caplog: pytest.LogCaptureFixture
) -> None:
    from bot.delivery import Outcome, OutcomeKind
    from bot.gate import DOWN_AFTER, GateReason

    class Flaky:
        """A network that refuses connections until ``down`` is cleared."""

        def __init__(self) -> None:
            self.down = True
            self.tries = 0
            self.in_flight = self.most_in_flight = 0
            self.sent: list[int] = []

        async def send(self, delivery: Delivery) -> Outcome:
            self.tries += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if self.down:
                    await asyncio.sleep(0.01)
                    return Outcome(OutcomeKind.RETRY, reason="connection error: refused")
                self.sent.append(delivery.post_id)  # in the order they are sent
                await asyncio.sleep(0.01)
                return Outcome(OutcomeKind.SENT, tweet_id=str(delivery.post_id))
            finally:
                self.in_flight -= 1

    client = Flaky()
    ids = await add_posts(store, 12, "down")
    caplog.set_level(logging.INFO, logger="bot")
    d = await make(client=client, max_concurrent=4)
    await wait_until(lambda: _true(d.gate.reason is GateReason.UNREACHABLE), 5,
                     "the gate closed for a network that does not answer")
    closed_at = client.tries
    assert closed_at <= DOWN_AFTER + 4  # not every post tried and backed off on its own
    await asyncio.sleep(1.5)
    client.most_in_flight = 0
    await asyncio.sleep(1.0)
    assert client.most_in_flight <= 1, "while it is down, one post probes it"
    assert client.tries - closed_at <= 6, "probes are paced by the gate, not by each post"
    assert await all_in(store, ids, "pending", "sending"), "nothing failed, nothing lost"

    client.down = False
    await wait_until(lambda: all_in(store, ids, "sent"), 10, "the backlog sent once back")
    assert client.sent == sorted(client.sent) == ids, "oldest first, each once"
    assert d.gate.reason is GateReason.NONE
    said = [r.getMessage().split()[0] for r in caplog.records]
    assert said.count("network_back") == 1 and "gate_opened" in said


async def _true(value: bool) -> bool:
    return value
