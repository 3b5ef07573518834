"""The posting gate of one destination: one wall shared by all its posts, and the bot's own
budgets. Each destination (an account on X, Mastodon or Bluesky) has its own.

While the gate is closed no post request is made. It closes when the network says 429 (until
the reset its headers name), when it rejects the credentials (401) or says the credits are
spent (X's 402), and when one of the bot's own budgets is used up (``MAX_POSTS_PER_DAY`` over
24 hours, for X ``X_MAX_SPEND_PER_MONTH`` over 30 days at ``X_COST_PER_POST`` a post). After a
wall the network put up the gate reopens "probing" (its reason is kept while it is open): the
dispatcher sends one post at a time until one is accepted, and :meth:`Gatekeeper.wall_gone`
then opens it fully.

When answers race (several posts in flight), the more serious reason is the one kept
(:data:`_SEVERITY`), and a change of state is logged once, not once per answer that says the
same. The gate is written to the store's meta table (``GATE_KEY``, JSON) before the post that
closed it goes back to pending, so that a restart does not walk into the same wall;
:meth:`Gatekeeper.load` reads it back with the start-up rules.

The budgets live here rather than in a module of their own: all they ever do is close this
gate (reasons ``daily_budget``, ``spend_budget``), and the rule that drops a budget gate at
start-up is one of the gate's rules. Counting the posts sent in a window is one store call.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from bot.times import iso

log = logging.getLogger(__name__)

GATE_KEY = "gate"  # the meta row that holds the gate as JSON
DAY = 86400.0
# No wall X names is longer than its 24-hour window; a reset further away than this is a
# garbled header (milliseconds, a wrong clock), and we would rather probe again.
MAX_GATE = DAY + 900.0


def gate_key(destination: str) -> str:
    """The meta row that holds a destination's gate."""
    return GATE_KEY if destination == "x" else f"{GATE_KEY}:{destination}"


class GateReason(StrEnum):
    """Why the gate is (or was last) closed; the values are persisted and shown in /healthz."""

    NONE = ""
    DAILY_BUDGET = "daily_budget"  # MAX_POSTS_PER_DAY: ours, nothing to probe
    SPEND_BUDGET = "spend_budget"  # X_MAX_SPEND_PER_MONTH: ours too
    RATE_LIMITED = "rate_limited"  # the network's 429
    UNREACHABLE = "unreachable"  # DOWN_AFTER attempts in a row got no answer: probed
    CREDITS = "credits"  # X's 402: posting is broken until a human acts
    AUTH = "auth"  # credentials rejected (401): broken until a human acts


# Which reason wins when two answers race: the one a human has to act on.
_SEVERITY = {GateReason.NONE: 0, GateReason.DAILY_BUDGET: 1, GateReason.SPEND_BUDGET: 1,
             GateReason.RATE_LIMITED: 2, GateReason.UNREACHABLE: 2,
             GateReason.CREDITS: 3, GateReason.AUTH: 4}
BROKEN = frozenset({GateReason.AUTH, GateReason.CREDITS})
BUDGETS = frozenset({GateReason.DAILY_BUDGET, GateReason.SPEND_BUDGET})  # ours: recomputed
MONTH = 30 * 86400.0
# A network that has not answered this many attempts in a row is down: its gate closes and
# one post probes it (at most UNREACHABLE_MAX seconds apart), instead of every post backing
# off on its own and the backlog coming out in any order once the network is back.
DOWN_AFTER = 3
UNREACHABLE_MAX = 60.0


@dataclass(frozen=True, slots=True)
class Gate:
    """The gate's state: closed while ``now < until``, with its reason and a detail for people."""

    until: float = 0.0
    reason: GateReason = GateReason.NONE
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", GateReason(self.reason))

    def closed(self, now: float) -> bool:
        return now < self.until

    def to_json(self) -> str:
        return json.dumps({"until": self.until, "reason": self.reason, "detail": self.detail})

    @property
    def broken(self) -> bool:
        """Posting cannot work until someone acts: credentials rejected, credits spent."""
        return self.reason in BROKEN

    def view(self, now: float) -> dict[str, object]:
        """The gate as /healthz and ``status`` show it."""
        closed = self.closed(now)
        shown = closed or self.broken
        return {"open": not closed, "reason": str(self.reason) if shown else "",
                "seconds_left": round(max(0.0, self.until - now), 1),
                "detail": self.detail if shown else "", "probing": bool(self.reason) and not closed}

    @classmethod
    def from_json(cls, raw: str | None) -> Gate:
        """The gate as :meth:`to_json` wrote it; an open gate for nothing or for garbage. A
        reason this version does not know (written by a newer one) is taken as a wall X put
        up: it is respected until ``until``, then probed."""
        try:
            data = json.loads(raw) if raw else {}
            until = float(data.get("until", 0))
            reason = str(data.get("reason", ""))
            detail = str(data.get("detail", ""))
        except (ValueError, TypeError, AttributeError):
            return cls()
        try:
            known = GateReason(reason)
        except ValueError:
            known = GateReason.RATE_LIMITED
        return cls(until, known, detail)


class MetaStore(Protocol):
    """What the gate needs of :class:`bot.store.Store`."""

    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, key: str, value: str) -> None: ...
    async def sent_since(self, since: float, destination: str = "x") -> list[float]: ...


class Gatekeeper:
    """Holds the gate for one destination: closes and opens it, writes it down, reads it back
    at start-up, and applies the daily budget. Each destination has its own (``x``'s is kept
    under the meta key it always had, ``gate``; another's under ``gate:<name>``)."""

    def __init__(self, store: MetaStore, *, clock: Callable[[], float],
                 backoff: Callable[[int], float], max_per_day: int | None = None,
                 max_spend_per_month: float | None = None, cost_per_post: float = 0.0,
                 destination: str = "x") -> None:
        self.store = store
        self.destination = destination
        self.key = gate_key(destination)
        self.clock = clock
        self.backoff = backoff  # strikes -> seconds, for a 429 that names no usable reset
        self.max_per_day = max_per_day
        self.max_spend_per_month = max_spend_per_month
        self.cost_per_post = cost_per_post
        self.gate = Gate()
        self._strikes = 0  # consecutive 429s without a usable reset header
        self._down_strikes = 0  # times in a row the gate closed for a network that is down
        self._stop_said = True  # False: a broken gate read at start-up, not yet refused again

    async def load(self) -> None:
        """Read the gate the last run left, with the start-up rules: a wall too far away is
        cut to :data:`MAX_GATE`; a budget gate is dropped (the budget is recomputed from the
        posts sent, and ``MAX_POSTS_PER_DAY`` may have changed); an auth or credits gate is
        probed at once (a restart may bring fixed settings), not at the end of its interval."""
        gate = Gate.from_json(await self.store.get_meta(self.key))
        now = self.clock()
        if gate.until > now + MAX_GATE:
            gate = replace(gate, until=now + MAX_GATE)
        if gate.reason in BUDGETS:
            gate = Gate()
        elif gate.reason in BROKEN:
            gate = replace(gate, until=0.0)
            # a WARNING, not an ERROR: the restart may well bring the fixed settings; a
            # probe that is refused again says posting_stopped at ERROR
            self._stop_said = False
            log.warning("posting_stopped destination=%s reason=%s (from before the restart): "
                        "%s; trying again now with one post", self.destination, gate.reason,
                        gate.detail)
        elif gate.closed(now):
            log.warning("gate_closed destination=%s reason=%s until=%s (from before the "
                        "restart)", self.destination, gate.reason, iso(gate.until))
        self.gate = gate

    async def close(self, until: float, reason: GateReason, detail: str, *,
                    quiet: bool = False) -> None:
        """Close the gate until ``until``, or keep it closed longer if it already is. When
        answers race, the more serious reason is the one kept. ``quiet``: the caller has
        logged this change itself."""
        now = self.clock()
        if self.gate.closed(now):
            new_until = max(until, self.gate.until)
            keep = _SEVERITY[reason] < _SEVERITY[self.gate.reason]
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
            log.warning("gate_closed destination=%s reason=%s until=%s detail=%r",
                        self.destination, new_reason, iso(new_until), new_detail)
        await self._persist()

    async def stop(self, reason: GateReason, detail: str, retry_in: float) -> None:
        """Posting is broken (auth, credits): one ERROR when that starts, then the gate
        closes for ``retry_in`` seconds at a time, a probe after each."""
        changed = self.gate.reason != reason or not self._stop_said
        self._stop_said = True
        if changed:
            log.error("posting_stopped destination=%s reason=%s: %s; posts stay pending, "
                      "retrying every %gs", self.destination, reason, detail, retry_in)
        # posting_stopped (above) says it: the gate_closed line would say it twice
        await self.close(self.clock() + retry_in, reason, detail, quiet=changed)

    async def rate_limited(self, now: float, retry_at: float | None, detail: str) -> None:
        """X said 429: close until ``retry_at``, the reset its headers named; without a usable
        one (none, or already past) for a backoff that grows with each such 429 in a row."""
        until = retry_at
        if until is None or until <= now:
            self._strikes += 1
            until = now + self.backoff(self._strikes)
        else:
            self._strikes = 0
        await self.close(min(until, now + MAX_GATE), GateReason.RATE_LIMITED, detail)

    async def unreachable(self, now: float, detail: str) -> None:
        """The network has not answered DOWN_AFTER attempts in a row: close the gate for a
        backoff that grows with each time in a row (at most UNREACHABLE_MAX); then one post
        probes it."""
        self._down_strikes += 1
        until = now + min(self.backoff(self._down_strikes), UNREACHABLE_MAX)
        await self.close(until, GateReason.UNREACHABLE, detail)

    async def open(self) -> None:
        log.info("gate_opened destination=%s previous_reason=%s", self.destination,
                 self.gate.reason)
        self.gate = Gate()
        await self._persist()

    async def wall_gone(self, now: float, *, posted: bool) -> None:
        """X read a request and answered it: a wall it had put up is gone, so a gate that was
        probing opens fully. ``posted`` (sent, duplicate; not a refused text) also ends a run
        of 429s without a usable reset."""
        if posted:
            self._strikes = 0
        self._down_strikes = 0  # it answered
        if self.gate.reason and not self.gate.closed(now):
            await self.open()

    async def _persist(self) -> None:
        # Awaited, not fire-and-forget: the gate is on disk before the post that closed it
        # goes back to pending, and nothing is left unwritten at shutdown.
        await self.store.set_meta(self.key, self.gate.to_json())

    # -- the budgets: MAX_POSTS_PER_DAY, X_MAX_SPEND_PER_MONTH --------------------------------

    def _budgets(self) -> list[tuple[float, int, GateReason, str]]:
        """(window, most posts in it, reason, why) for each budget set."""
        found = []
        if self.max_per_day is not None:
            found.append((DAY, self.max_per_day, GateReason.DAILY_BUDGET,
                          f"MAX_POSTS_PER_DAY={self.max_per_day} reached"))
        if self.max_spend_per_month is not None and self.cost_per_post > 0:
            most = int(self.max_spend_per_month / self.cost_per_post + 1e-9)
            found.append((MONTH, most, GateReason.SPEND_BUDGET,
                          f"X_MAX_SPEND_PER_MONTH={self.max_spend_per_month:g} reached ({most} "
                          f"posts in 30 days at X_COST_PER_POST={self.cost_per_post:g})"))
        return found

    async def budget(self, now: float, in_flight: int
                     ) -> tuple[int, float | None, GateReason, str]:
        """How many more posts the budgets let start now (a very large number without one),
        and, when none: when one more may (the moment the oldest send that must leave the
        window does, or None when posts in flight hold the budget: one of them ending is
        the next news), with the budget's reason and why."""
        room, reopens_at = sys.maxsize, None
        reason, why = GateReason.NONE, ""
        for window, most, budget_reason, budget_why in self._budgets():
            sent = await self.store.sent_since(now - window, self.destination)
            left = most - len(sent) - in_flight
            if left > 0:
                room = min(room, left)
                continue
            must_expire = len(sent) + in_flight - most + 1
            at = None if must_expire > len(sent) else sent[must_expire - 1] + window
            if room > 0 or (at is not None and (reopens_at is None or at > reopens_at)):
                reopens_at, reason, why = at, budget_reason, budget_why
            room = 0
        return room, reopens_at, reason, why

    async def close_for_budget(self, until: float, reason: GateReason, why: str) -> None:
        await self.close(until, reason, why)

    def health(self, now: float) -> dict[str, object]:
        """The gate's part of /healthz: ``gate`` and ``posting_broken``."""
        return {"gate": self.gate.view(now), "posting_broken": self.gate.broken}
