"""Background posting: one task per post, a bounded number in flight, one gate for all.

The queue is durable: pending posts live in SQLite. A pump task claims the posts that are
due (pending -> sending, committed; one trip to the database per pass) and hands each to its
own background task; polling never awaits any of this, it only calls
:meth:`Dispatcher.wake`. Every task's exception reaches a handler that logs it; strong
references are kept until a task ends.

The gate closes for everyone when X says 429 (until the reset its headers name), when the
credentials are rejected (401) or the credits are spent (402), and when the bot's own daily
budget (``MAX_POSTS_PER_DAY``) is used up. While it is closed no post request is made. When
it reopens after a wall X put up, one post at a time probes it until X accepts one; then the
usual concurrency resumes. The gate is written to SQLite before the post that closed it is
put back, so a restart does not walk into the same wall.

A post's life: ``pending`` -> ``sending`` (claimed, committed before the call) -> ``sent``
or ``failed``; anything X did not confirm goes back to ``pending``. An ambiguous attempt (the
connection cut after the request left, a timeout, a kill) is retried, and X's
duplicate-content 403 then settles it as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.metrics import Metrics
from bot.store import DRY_RUN_NOTE, Post, Store, is_write_failure
from bot.twitter import Outcome

log = logging.getLogger(__name__)

GATE_KEY = "gate"
DAY = 86400.0
# No wall X names is longer than its 24-hour window; a reset further away than this is a
# garbled header (milliseconds, a wrong clock), and we would rather probe again.
MAX_GATE = DAY + 900.0
PUMP_ERROR_PAUSE = 5.0  # after an unexpected error in the pump (e.g. the disk is full)
# Another process may change the queue (`bot posts retry`): look at SQLite at least this often.
IDLE_RECHECK = 15.0
_SEVERITY = {"": 0, "daily_budget": 1, "rate_limited": 2, "credits": 3, "auth": 4}


class Poster(Protocol):
    async def post(self, text: str) -> Outcome: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: about ``base`` doubling up to ``cap`` seconds."""

    base: float = 2.0
    cap: float = 900.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        raw = min(self.cap, self.base * 2 ** min(64, max(0, attempt - 1)))
        return min(self.cap, raw * (0.75 + 0.5 * rng.random()))


@dataclass(slots=True)
class Gate:
    until: float = 0.0
    reason: str = ""  # "rate_limited", "auth", "credits", "daily_budget" or ""
    detail: str = ""

    def closed(self, now: float) -> bool:
        return now < self.until

    def to_json(self) -> str:
        return json.dumps({"until": self.until, "reason": self.reason, "detail": self.detail})

    @classmethod
    def from_json(cls, raw: str | None) -> Gate:
        try:
            data = json.loads(raw) if raw else {}
            return cls(float(data.get("until", 0)), str(data.get("reason", "")),
                       str(data.get("detail", "")))
        except (ValueError, TypeError, AttributeError):
            return cls()


class Dispatcher:
    def __init__(
        self,
        store: Store,
        client: Poster,
        *,
        max_concurrent: int = 4,
        max_post_age: float = DAY,
        max_per_day: int | None = None,
        auth_retry_interval: float = 300.0,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.max_concurrent = max_concurrent
        self.max_post_age = max_post_age
        self.max_per_day = max_per_day
        self.auth_retry_interval = auth_retry_interval
        self.backoff = backoff
        self.clock = clock
        self.rng = rng or random.Random()
        self.metrics = metrics or Metrics()
        self.gate = Gate()
        self._gate_strikes = 0  # consecutive 429s without a usable reset header
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._settling: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._pass_done = asyncio.Event()
        self._passes_started = 0
        self._passes_done = 0
        self._pump: asyncio.Task[None] | None = None
        self._closing = False
        # post id -> the post (as claimed) whose outcome could not be written
        self._unrecorded: dict[int, Post] = {}

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        requeued = await self.store.requeue_interrupted()
        if requeued:
            log.warning("posts_requeued count=%d reason=interrupted_while_sending", requeued)
        self.gate = Gate.from_json(await self.store.get_meta(GATE_KEY))
        now = self.clock()
        if self.gate.until > now + MAX_GATE:
            self.gate.until = now + MAX_GATE
        if self.gate.reason == "daily_budget":
            # ours, not X's: recomputed from the posts sent (MAX_POSTS_PER_DAY may have changed)
            self.gate = Gate()
        elif self.gate.reason in ("auth", "credits"):
            # Settings are read at start: a restart may bring fixed credentials, so probe
            # with one post now rather than at the end of the slow retry interval.
            self.gate.until = 0.0
            log.error("posting_stopped reason=%s (from before the restart): %s; probing "
                      "with one post", self.gate.reason, self.gate.detail)
        elif self.gate.closed(now):
            log.warning("gate_closed reason=%s until=%s (from before the restart)",
                        self.gate.reason, _iso(self.gate.until))
        pending = (await self.store.post_counts())["pending"]
        if pending:
            log.info("posts_resumed pending=%d", pending)
        self._pump = asyncio.create_task(self._run_pump(), name="dispatch-pump")
        self._pump.add_done_callback(_log_task_exception)

    def wake(self) -> None:
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def close(self, grace: float = 10.0) -> None:
        """Stop taking posts; give those in flight up to ``grace`` seconds, then cancel
        them. Whatever was not confirmed stays pending for the next start."""
        self._closing = True
        self._wake.set()
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        tasks = list(self._in_flight.values())
        if tasks:
            log.info("shutdown_waiting_for_posts in_flight=%d grace=%gs", len(tasks), grace)
            _, still = await asyncio.wait(tasks, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.gather(*still, return_exceptions=True)
                log.warning("shutdown_posts_interrupted count=%d (kept pending)", len(still))
        # an answer that came in is written down, even if its task was cancelled meanwhile
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    async def drain(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until nothing is due and nothing is in flight (tests, burst mode)."""
        async with asyncio.timeout(timeout):
            while True:
                # a pass that starts after this point sees everything committed before it
                target = self._passes_started + 1
                self.wake()
                while self._passes_done < target:
                    if self._pump is None or self._pump.done():
                        return
                    self._pass_done.clear()
                    await self._pass_done.wait()
                if not self._in_flight:
                    return
                await asyncio.wait(list(self._in_flight.values()))

    # -- the pump ----------------------------------------------------------------------------

    async def _run_pump(self) -> None:
        while not self._closing:
            self._wake.clear()
            self._passes_started += 1
            try:
                wait = await self._dispatch_due()
            except Exception as exc:
                # Never die silently: the queue is in SQLite, we only have to come back.
                # (A database that cannot be written is logged once a minute by the store.)
                if not is_write_failure(exc):
                    log.exception("dispatch_pass_failed (trying again in %gs)",
                                  PUMP_ERROR_PAUSE)
                wait = PUMP_ERROR_PAUSE
            self._passes_done = self._passes_started
            self._pass_done.set()
            wait = IDLE_RECHECK if wait is None else min(wait, IDLE_RECHECK)
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _requeue_unrecorded(self) -> None:
        """Posts whose outcome could not be written go back to pending, now that (and if)
        the database takes writes again: no restart needed."""
        for post_id, post in list(self._unrecorded.items()):
            await self.store.mark_pending(post, 0, "sent again: its outcome could not be "
                                          "written (the database was unwritable)")
            del self._unrecorded[post_id]
            log.info("post_requeued id=%d reason=outcome_not_recorded", post_id)

    async def _dispatch_due(self) -> float | None:
        """Start tasks for the posts that are due. Returns seconds until something is due
        again, or None to wait for a wake-up (a finishing task or a new post)."""
        if self._unrecorded:
            await self._requeue_unrecorded()
        now = self.clock()
        self.metrics.gate_seconds.set(max(0.0, self.gate.until - now))
        if self.gate.closed(now):
            return self.gate.until - now
        if self.gate.reason == "daily_budget":  # our own limit: nothing to probe
            await self._open_gate()
        free = self._free_slots()
        if free <= 0:
            return None
        if self.max_per_day is not None:
            sent = await self.store.sent_since(now - DAY)
            room = self.max_per_day - len(sent) - len(self._in_flight)
            if room <= 0:
                # the oldest sends have to leave the 24-hour window to make room for one
                must_expire = len(sent) + len(self._in_flight) - self.max_per_day + 1
                if must_expire > len(sent):
                    return None  # the budget is held by posts in flight: they wake us
                if not await self.store.due_posts(now, 1):  # nothing waits for it yet
                    due = await self.store.next_due_at()
                    return None if due is None else max(0.05, due - self.clock())
                await self._close_gate(sent[must_expire - 1] + DAY, "daily_budget",
                                       f"MAX_POSTS_PER_DAY={self.max_per_day} reached")
                return max(0.0, self.gate.until - self.clock())
            free = min(free, room)
        # one trip: claim what is due, count what is left (not post_counts(): that counts
        # every post ever sent), and when the next one is due
        claiming = asyncio.ensure_future(
            self.store.claim_due(now, free, exclude=self._in_flight))
        try:
            batch = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # close() while the database thread claims: what it claimed goes back untried
            # (else up to max_concurrent posts would sit in 'sending' until the next start)
            with contextlib.suppress(Exception):
                for post in (await claiming).claimed:
                    await self.store.mark_pending(post, 0, post.last_error,
                                                  refund_attempt=True)
            raise
        for post in batch.claimed:
            # should the gate have closed meanwhile, the task puts the post back untried
            self._spawn(post)
        self.metrics.pending.set(batch.pending)
        if self.gate.closed(self.clock()):
            return self.gate.until - self.clock()
        if len(batch.claimed) == free or self._free_slots() <= 0:
            return None  # every slot is taken; a finishing task wakes us
        if batch.next_due_at is None:
            return None
        # a post that is due but was not started (a claim lost to a race) is looked at again
        return max(0.05, batch.next_due_at - self.clock())

    def _free_slots(self) -> int:
        free = self.max_concurrent - len(self._in_flight)
        if self.gate.reason:  # just past a wall X put up: one probe at a time until X says yes
            free = min(free, 1 - len(self._in_flight))
        return free

    def _spawn(self, post: Post) -> None:
        task = asyncio.create_task(self._send(post), name=f"post-{post.id}")
        self._in_flight[post.id] = task
        task.add_done_callback(_log_task_exception)

    async def _send(self, post: Post) -> None:
        try:
            if self.gate.closed(self.clock()):
                # closed between the claim and this task's first step: no request, no attempt
                await self.store.mark_pending(post, 0, post.last_error, refund_attempt=True)
                return
            try:
                outcome = await self.client.post(post.text)
            except asyncio.CancelledError:
                # Shutdown: we do not know whether X got it; leave it pending, a retry's
                # duplicate-content 403 settles it if it did.
                await asyncio.shield(self.store.mark_pending(post, 0,
                                                             "interrupted by shutdown"))
                raise
            # X answered: write that down even if a shutdown cancels us meanwhile.
            settling = asyncio.create_task(self._settle(post, outcome), name=f"settle-{post.id}")
            self._settling.add(settling)
            settling.add_done_callback(self._settling.discard)
            try:
                await asyncio.shield(settling)
            except asyncio.CancelledError:
                if not settling.done():
                    await asyncio.wait([settling])
                raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_write_failure(exc):
                # A bug this post's text or answer brings out: it backs off like a transient
                # error and fails at MAX_POST_AGE, and never holds up the other posts.
                log.exception("post_crashed id=%d", post.id)
                with contextlib.suppress(Exception):
                    await self._settle(post, Outcome(
                        "retry", reason=f"internal error: {type(exc).__name__}: {exc}"))
                    return
            # Its outcome could not be written (the disk is full): it is still 'sending' in
            # the database. Once writing works again it goes back to pending and is sent
            # again; if X did take it, X's duplicate-content 403 settles it as sent.
            self._unrecorded[post.id] = post
        finally:
            self._in_flight.pop(post.id, None)
            self._wake.set()

    async def _settle(self, post: Post, outcome: Outcome) -> None:
        now = self.clock()
        attempt = post.attempts + 1
        self.metrics.posts.labels(outcome.kind).inc()
        if outcome.kind in ("sent", "duplicate"):
            self._gate_strikes = 0
            if self.gate.reason and not self.gate.closed(now):
                await self._open_gate()
            note = "already on X (duplicate content)" if outcome.kind == "duplicate" else None
            if outcome.reason == "dry run":
                note = DRY_RUN_NOTE
            await self.store.mark_sent(post, outcome.tweet_id, now, note)
            if outcome.reason == "dry run":
                log.info("post_dry_run id=%d (recorded as handled, not posted)", post.id)
            else:
                log.info("post_sent id=%d tweet_id=%s attempt=%d%s", post.id, outcome.tweet_id,
                         attempt, " duplicate=1" if outcome.kind == "duplicate" else "")
        elif outcome.kind == "rate_limited":
            until = outcome.retry_at
            if until is None or until <= now:
                self._gate_strikes += 1
                until = now + self.backoff.delay(self._gate_strikes, self.rng)
            else:
                self._gate_strikes = 0
            await self._close_gate(min(until, now + MAX_GATE), "rate_limited", outcome.reason)
            await self.store.mark_pending(post, 0, outcome.reason, refund_attempt=True)
            log.info("post_deferred id=%d reason=rate_limited until=%s", post.id,
                     _iso(self.gate.until))
        elif outcome.kind in ("auth", "credits"):
            what = ("X rejected the credentials (401): check TWITTER_API_KEY, TWITTER_API_SECRET, "
                    "TWITTER_ACCESS_TOKEN, TWITTER_ACCESS_TOKEN_SECRET and that the app has "
                    "read+write permission" if outcome.kind == "auth" else
                    "X says the account is out of credits (402): add credits in the developer "
                    "portal")
            if self.gate.reason != outcome.kind:
                log.error("posting_stopped reason=%s: %s; posts stay pending, retrying every %gs",
                          outcome.kind, what, self.auth_retry_interval)
            # posting_stopped (above) says it: the gate_closed line would say it twice
            await self._close_gate(now + self.auth_retry_interval, outcome.kind, what,
                                   quiet=self.gate.reason != outcome.kind)
            await self.store.mark_pending(post, 0, outcome.reason, refund_attempt=True)
        elif outcome.kind == "retry":
            if now - post.created_at >= self.max_post_age:
                reason = f"gave up after {attempt} attempts: {outcome.reason}"
                await self.store.mark_failed(post, reason)
                log.error("post_failed id=%d reason=%r", post.id, reason)
            else:
                delay = self.backoff.delay(attempt, self.rng)
                await self.store.mark_pending(post, now + delay, outcome.reason)
                log.warning("post_retry id=%d attempt=%d in=%.1fs reason=%r", post.id, attempt,
                            delay, outcome.reason)
        else:  # failed: X read the request and refused this text; the wall, if any, is gone
            if self.gate.reason and not self.gate.closed(now):
                await self._open_gate()
            await self.store.mark_failed(post, outcome.reason)
            log.error("post_failed id=%d reason=%r", post.id, outcome.reason)

    async def _close_gate(self, until: float, reason: str, detail: str, *,
                          quiet: bool = False) -> None:
        """Close the gate until ``until``, or keep it closed longer if it already is. When
        answers race (two posts in flight), the more serious reason is the one reported."""
        now = self.clock()
        if self.gate.closed(now):
            new_until = max(until, self.gate.until)
            keep = _SEVERITY.get(reason, 0) < _SEVERITY.get(self.gate.reason, 0)
            new_reason, new_detail = ((self.gate.reason, self.gate.detail) if keep
                                      else (reason, detail))
        else:  # open, or probing after a wall: this answer is the news
            new_until, new_reason, new_detail = until, reason, detail
        if (new_until, new_reason) == (self.gate.until, self.gate.reason):
            return
        # one line per state change: not again for a racing answer that says the same
        news = (not self.gate.closed(now) or new_reason != self.gate.reason
                or new_until - self.gate.until > 1.0)
        self.gate = Gate(new_until, new_reason, new_detail)
        if news and not quiet:
            log.warning("gate_closed reason=%s until=%s detail=%r", new_reason,
                        _iso(new_until), new_detail)
        await self._persist_gate()

    async def _open_gate(self) -> None:
        log.info("gate_opened previous_reason=%s", self.gate.reason)
        self.gate = Gate()
        await self._persist_gate()

    async def _persist_gate(self) -> None:
        # Awaited, not fire-and-forget: the gate is on disk before the post that closed it
        # goes back to pending, and nothing is left unwritten at shutdown.
        await self.store.set_meta(GATE_KEY, self.gate.to_json())

    def health(self) -> dict[str, object]:
        now = self.clock()
        closed = self.gate.closed(now)
        broken = self.gate.reason in ("auth", "credits")
        return {
            "in_flight": len(self._in_flight),
            "gate": {
                "open": not closed,
                "reason": self.gate.reason if closed or broken else "",
                "seconds_left": round(max(0.0, self.gate.until - now), 1),
                "detail": self.gate.detail if closed or broken else "",
                "probing": bool(self.gate.reason) and not closed,
            },
            "posting_broken": broken,
        }


def _log_task_exception(task: asyncio.Task[object]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background_task_failed task=%s", task.get_name(), exc_info=exc)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
