"""Durable queue -> bounded background tasks -> the network's answer -> the post's next state.

One :class:`Dispatcher` per destination (an account on X, Mastodon or Bluesky): each claims
only its own posts, has its own gate, budget and backoff, and a destination that is down
never holds up another. Pending posts live in SQLite. A pump task claims those that are due
(pending -> sending, committed; one trip to the database per pass) and hands each to its own
task in a bounded :class:`~bot.pool.TaskPool`; polling never awaits this, it only calls
:meth:`Dispatcher.wake`. No request is made while the gate (:mod:`bot.gate`) is closed; when it
reopens after a wall the network put up, one post at a time probes it until one is accepted.

A post's life (:class:`~bot.models.PostState`): ``pending`` -> ``sending`` -> ``sent`` or
``failed``; anything the network did not confirm goes back to ``pending``, now or at the next
start. The client's answer (an :class:`~bot.delivery.Outcome`) decides which:

sent, duplicate  ``sent`` (a duplicate settles an ambiguous earlier attempt: X's
                 duplicate-content 403, Mastodon's replay of the Idempotency-Key, a Bluesky
                 record found under the post's key)
rate_limited     ``pending``, attempt refunded; the gate closes until the reset the network names
auth, credits    ``pending``, attempt refunded; the gate closes, probed every
                 ``auth_retry_interval`` seconds
retry            ``pending`` after a backoff, or ``failed`` once the post is ``max_post_age`` old;
                 after DOWN_AFTER in a row the network is down: the gate closes, one post
                 probes it, and once it answers every post is due again, oldest first
failed           ``failed`` with the network's reason

An ambiguous attempt (the connection cut after the request left, a timeout, a kill) is
retried with the same post key and settled as above. Its attempt is not refunded, so the next
one knows an earlier one may have landed (``Delivery.attempts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.delivery import Delivery, card_from_json
from bot.gate import (
    BUDGETS,
    DAY,
    DOWN_AFTER,
    GATE_KEY,
    MAX_GATE,
    Gate,
    Gatekeeper,
    GateReason,
)
from bot.metrics import Metrics
from bot.networks import network_of
from bot.pool import TaskPool
from bot.store import DRY_RUN_NOTE, Post, Store, is_write_failure
from bot.times import iso
from bot.twitter import BROKEN_HELP, DRY_RUN_REASON, Outcome, OutcomeKind

__all__ = ["DAY", "GATE_KEY", "MAX_GATE", "Backoff", "Dispatcher", "Gate", "GateReason",
           "Poster"]

log = logging.getLogger(__name__)

PUMP_ERROR_PAUSE = 5.0  # after an unexpected error in the pump (e.g. the disk is full)
# Another process may change the queue (`bot posts retry`): look at SQLite at least this often.
IDLE_RECHECK = 15.0


# the note of a post settled as already there, per network (it counts as posted: budgets)
_ALREADY_THERE = {"x": "already on X (duplicate content)",
                  "mastodon": "already on Mastodon (same Idempotency-Key)",
                  "bluesky": "already on Bluesky (its record exists)"}


class Poster(Protocol):
    """A network's client (:class:`~bot.twitter.XClient`, :class:`~bot.mastodon.MastodonClient`,
    :class:`~bot.bluesky.BlueskyClient`, a dry run's): never raises for an answer."""

    async def send(self, delivery: Delivery) -> Outcome: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: about ``base`` doubling up to ``cap`` seconds."""

    base: float = 2.0
    cap: float = 900.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        raw = min(self.cap, self.base * 2 ** min(64, max(0, attempt - 1)))
        return min(self.cap, raw * (0.75 + 0.5 * rng.random()))


class Dispatcher:
    """Sends the posts of the durable queue to one destination: :meth:`start`, :meth:`wake`
    after new posts are recorded, :meth:`close` at shutdown; :meth:`drain` for burst mode."""

    def __init__(self, store: Store, client: Poster, *, max_concurrent: int = 4,
                 max_post_age: float = DAY, max_per_day: int | None = None,
                 max_spend_per_month: float | None = None, cost_per_post: float = 0.0,
                 auth_retry_interval: float = 300.0, backoff: Backoff = Backoff(),
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 metrics: Metrics | None = None, destination: str = "x") -> None:
        self.store = store
        self.client = client
        self.destination = destination
        self.network = network_of(destination)
        # what the operator must do when posting is broken, in this network's words
        self.broken_help: Mapping[OutcomeKind, str] = getattr(client, "broken_help",
                                                              BROKEN_HELP)
        self.max_concurrent = max_concurrent
        self.max_post_age = max_post_age
        self.auth_retry_interval = auth_retry_interval
        self.backoff = backoff
        self.clock = clock
        self.rng = rng or random.Random()
        self.metrics = metrics or Metrics()
        self._gate_gauge = self.metrics.destination_gate_seconds.labels(destination)
        self.gatekeeper = Gatekeeper(store, clock=clock, max_per_day=max_per_day,
                                     max_spend_per_month=max_spend_per_month,
                                     cost_per_post=cost_per_post, destination=destination,
                                     backoff=lambda strikes: self.backoff.delay(strikes, self.rng))
        self._wake = asyncio.Event()
        # post id -> its task; a task leaving the pool wakes the pump (a slot is free)
        self._pool: TaskPool[int] = TaskPool(max_concurrent, on_error=_log_task_exception,
                                             on_done=self._wake.set)
        self._pass_done = asyncio.Event()
        self._passes_started = 0
        self._passes_done = 0
        self._pump: asyncio.Task[None] | None = None
        self._closing = False
        # post id -> the post (as claimed) whose outcome could not be written
        self._unrecorded: dict[int, Post] = {}
        # the network's trouble, for /healthz: answers in a row that were no answer about the
        # post (a timeout, a refused connection, a 5xx), and the last one's reason
        self._failures = 0
        self._last_error: str | None = None

    @property
    def gate(self) -> Gate:
        return self.gatekeeper.gate

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        requeued = await self.store.requeue_interrupted(self.destination)
        if requeued:
            log.warning("posts_requeued count=%d reason=interrupted_while_sending%s", requeued,
                        self._where)
        await self.gatekeeper.load()
        pending = await self.store.pending_count(self.destination)
        if pending:
            log.info("posts_resumed pending=%d%s", pending, self._where)
        self._pump = asyncio.create_task(self._run_pump(),
                                         name=f"dispatch-pump-{self.destination}")
        self._pump.add_done_callback(_log_pump_exception)

    def wake(self) -> None:
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._pool)

    async def close(self, grace: float = 10.0) -> None:
        """Stop taking posts; give those in flight up to ``grace`` seconds, then cancel
        them. Whatever was not confirmed stays pending for the next start."""
        self._closing = True
        self._wake.set()
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        if self._pool:
            log.info("shutdown_waiting_for_posts in_flight=%d grace=%gs", len(self._pool), grace)
        # an answer that came in is written down, even if its task was cancelled meanwhile
        if interrupted := await self._pool.close(grace):
            log.warning("shutdown_posts_interrupted count=%d (kept pending)", interrupted)

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
                if not self._pool:
                    return
                await self._pool.wait()

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
        self._gate_gauge.set(max(0.0, self.gate.until - now))
        if self.gate.closed(now):
            return self.gate.until - now
        if self.gate.reason in BUDGETS:  # our own limit: nothing to probe
            await self.gatekeeper.open()
        free = self._free_slots()
        if free <= 0:
            return None
        room, reopens_at, reason, why = await self.gatekeeper.budget(now, len(self._pool))
        if room <= 0:
            if reopens_at is None:
                return None  # the budget is held by posts in flight: they wake us
            if not await self.store.due_posts(now, 1, destination=self.destination):
                due = await self.store.next_due_at(self.destination)  # nothing waits yet
                return None if due is None else max(0.05, due - self.clock())
            await self.gatekeeper.close_for_budget(reopens_at, reason, why)
            return max(0.0, self.gate.until - self.clock())
        free = min(free, room)
        # one trip: claim what is due, count what is left (not post_counts(): that counts
        # every post ever sent), and when the next one is due
        claiming = asyncio.ensure_future(
            self.store.claim_due(now, free, exclude=self._pool.keys(),
                                 destination=self.destination))
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
            self._pool.spawn(post.id, self._send(post), name=f"post-{post.id}")
        if self.gate.closed(self.clock()):
            return self.gate.until - self.clock()
        if len(batch.claimed) == free or self._free_slots() <= 0:
            return None  # every slot is taken; a finishing task wakes us
        if batch.next_due_at is None:
            return None
        # a post that is due but was not started (a claim lost to a race) is looked at again
        return max(0.05, batch.next_due_at - self.clock())

    def _free_slots(self) -> int:
        free = self._pool.free
        if self.gate.reason:  # past a wall the network put up: one probe at a time
            free = min(free, 1 - len(self._pool))
        return free

    # -- one post ----------------------------------------------------------------------------

    async def _send(self, post: Post) -> None:
        try:
            if self.gate.closed(self.clock()):
                # closed between the claim and this task's first step: no request, no attempt
                await self.store.mark_pending(post, 0, post.last_error, refund_attempt=True)
                return
            try:
                outcome = await self.client.send(self._delivery(post))
            except asyncio.CancelledError:
                # Shutdown: we do not know whether the network got it; leave it pending:
                # the retry is recognised (X's 403, Mastodon's key, Bluesky's getRecord).
                await asyncio.shield(self.store.mark_pending(post, 0,
                                                             "interrupted by shutdown"))
                raise
            # The network answered: write that down even if a shutdown cancels us meanwhile.
            await self._pool.shield(self._settle(post, outcome), name=f"settle-{post.id}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_write_failure(exc):
                # A bug this post's text or answer brings out: it backs off like a transient
                # error and fails at MAX_POST_AGE, and never holds up the other posts.
                log.exception("post_crashed id=%d", post.id)
                with contextlib.suppress(Exception):
                    await self._settle(post, Outcome(
                        OutcomeKind.RETRY, reason=f"internal error: {type(exc).__name__}: {exc}"),
                        internal=True)
                    return
            # Its outcome could not be written (the disk is full): it is still 'sending' in
            # the database. Once writing works again it goes back to pending and is sent
            # again; if the network did take it, the retry is recognised and settled as sent.
            self._unrecorded[post.id] = post

    async def _settle(self, post: Post, outcome: Outcome, *, internal: bool = False) -> None:
        """Write down what the network's answer means for this post (and for the gate).
        ``internal``: the RETRY is a bug this post brought out, not the network's silence."""
        now = self.clock()
        attempt = post.attempts + 1
        kind = outcome.kind
        was_down = self.gate.reason is GateReason.UNREACHABLE
        if kind is OutcomeKind.RETRY and not internal:
            self._failures += 1
            self._last_error = outcome.reason
        elif kind in (OutcomeKind.SENT, OutcomeKind.DUPLICATE, OutcomeKind.FAILED):
            self._failures, self._last_error = 0, None  # it answered about the post
        self.metrics.posts.labels(kind).inc()
        self.metrics.destination_outcomes.labels(self.destination, kind).inc()
        if kind in (OutcomeKind.SENT, OutcomeKind.DUPLICATE):  # -> sent
            await self.gatekeeper.wall_gone(now, posted=True)
            if was_down and not self.gate.reason:
                await self._back(now)
            duplicate = kind is OutcomeKind.DUPLICATE
            note = None
            if duplicate:  # the network's own words after ours ("already on …", counted)
                note = _ALREADY_THERE.get(self.network, "already there")
                if outcome.reason and self.network != "x":
                    note = f"{note}: {outcome.reason}"
            if outcome.reason == DRY_RUN_REASON:
                note = DRY_RUN_NOTE
            await self.store.mark_sent(post, outcome.tweet_id, now, note)
            if outcome.reason == DRY_RUN_REASON:
                log.info("post_dry_run id=%d (recorded as handled, not posted)%s", post.id,
                         self._where)
            else:
                log.info("post_sent id=%d tweet_id=%s attempt=%d%s%s", post.id,
                         outcome.tweet_id, attempt, " duplicate=1" if duplicate else "",
                         self._where)
        elif kind is OutcomeKind.RATE_LIMITED:  # -> pending, attempt refunded, gate closed
            await self.gatekeeper.rate_limited(now, outcome.retry_at, outcome.reason)
            await self.store.mark_pending(post, 0, outcome.reason, refund_attempt=True)
            log.info("post_deferred id=%d reason=rate_limited until=%s%s", post.id,
                     iso(self.gate.until), self._where)
        elif kind in (OutcomeKind.AUTH, OutcomeKind.CREDITS):  # -> pending, posting stopped
            await self.gatekeeper.stop(GateReason(kind),
                                       self.broken_help.get(kind, outcome.reason),
                                       self.auth_retry_interval)
            await self.store.mark_pending(post, 0, outcome.reason, refund_attempt=True)
        elif kind is OutcomeKind.RETRY:  # -> pending after a backoff, or failed when too old
            if now - post.created_at >= self.max_post_age:
                reason = f"gave up after {attempt} attempts: {outcome.reason}"
                await self.store.mark_failed(post, reason)
                log.error("post_failed id=%d reason=%r%s", post.id, reason, self._where)
            elif not internal and self._failures >= DOWN_AFTER:
                # the network is down, not this post: the gate paces the probes, and the post
                # stays due, so that the backlog goes out oldest first once the network is back
                await self.gatekeeper.unreachable(now, outcome.reason)
                await self.store.mark_pending(post, 0, outcome.reason)
                log.warning("post_retry id=%d attempt=%d when=network_back reason=%r%s",
                            post.id, attempt, outcome.reason, self._where)
            else:
                delay = self.backoff.delay(attempt, self.rng)
                await self.store.mark_pending(post, now + delay, outcome.reason)
                log.warning("post_retry id=%d attempt=%d in=%.1fs reason=%r%s", post.id,
                            attempt, delay, outcome.reason, self._where)
        else:  # failed: the network refused this text; its wall, if any, is gone
            await self.gatekeeper.wall_gone(now, posted=False)
            if was_down and not self.gate.reason:
                await self._back(now)
            await self.store.mark_failed(post, outcome.reason)
            log.error("post_failed id=%d reason=%r%s", post.id, outcome.reason, self._where)

    async def _back(self, now: float) -> None:
        """The network answers again after it was down: every post of this destination that
        was backing off is due now, so the backlog goes out oldest first."""
        due = await self.store.due_now(self.destination, now)
        log.info("network_back%s posts_due=%d", self._where or " destination=x", due)
        self.wake()

    def health(self) -> dict[str, object]:
        return {"in_flight": len(self._pool), **self.gatekeeper.health(self.clock()),
                "consecutive_failures": self._failures, "last_error": self._last_error}

    @property
    def _where(self) -> str:
        """`` destination=NAME`` for the log lines (said for every destination but ``x``,
        whose lines read as they did before there were others)."""
        return "" if self.destination == "x" else f" destination={self.destination}"

    def _delivery(self, post: Post) -> Delivery:
        link, card = card_from_json(post.card)
        return Delivery(post_id=post.id, text=post.text, key=post.key or f"post-{post.id}",
                        attempts=post.attempts, link=link or post.link, card=card,
                        destination=self.destination)


def _log_task_exception(task: asyncio.Task[object], exc: BaseException) -> None:
    log.error("background_task_failed task=%s", task.get_name(), exc_info=exc)


def _log_pump_exception(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        _log_task_exception(task, exc)
