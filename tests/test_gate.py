"""The posting gate alone: severity, one log line per change, persistence, start-up rules,
429 backoff, the daily budget. A dict stands in for the store's meta table (one round trip
goes through a real Store); the clock is a number the test moves."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from bot.gate import DAY, GATE_KEY, MAX_GATE, Gate, Gatekeeper, GateReason
from bot.store import Store

NOW = 1_800_000_000.0


class Meta:
    """The three store methods the gate uses, in memory."""

    def __init__(self, sent: list[float] | None = None) -> None:
        self.meta: dict[str, str] = {}
        self.sent = sent or []
        self.sent_since_calls = 0

    async def get_meta(self, key: str) -> str | None:
        return self.meta.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.meta[key] = value

    async def sent_since(self, since: float, destination: str = "x") -> list[float]:
        self.sent_since_calls += 1
        return sorted(t for t in self.sent if t >= since)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def keeper(meta: Meta | None = None, clock: Clock | None = None, *,
           max_per_day: int | None = None) -> Gatekeeper:
    return Gatekeeper(meta or Meta(), clock=clock or Clock(), max_per_day=max_per_day,
                      backoff=lambda strikes: 10.0 * 2 ** (strikes - 1))


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage().split()[0] for r in caplog.records]


# -- the value ---------------------------------------------------------------------------------


def test_reasons_keep_their_persisted_values() -> None:
    assert [r.value for r in GateReason] == ["", "daily_budget", "spend_budget", "rate_limited",
                                             "unreachable", "credits", "auth"]
    assert not GateReason.NONE and GateReason.AUTH == "auth"
    gate = Gate(NOW + 60, GateReason.RATE_LIMITED, "HTTP 429")
    assert json.loads(gate.to_json()) == {"until": NOW + 60, "reason": "rate_limited",
                                          "detail": "HTTP 429"}
    assert Gate.from_json(gate.to_json()) == gate
    assert Gate(NOW, "auth").reason is GateReason.AUTH  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [None, "", "not json", "[1]", '{"until": "soon"}', "null"])
def test_garbage_reads_as_an_open_gate(raw: str | None) -> None:
    assert Gate.from_json(raw) == Gate()


def test_a_reason_from_a_newer_version_is_respected_as_a_wall() -> None:
    gate = Gate.from_json(json.dumps({"until": NOW + 60, "reason": "suspended", "detail": "d"}))
    assert gate == Gate(NOW + 60, GateReason.RATE_LIMITED, "d")
    assert gate.closed(NOW) and not gate.closed(NOW + 60)


# -- closing and opening -----------------------------------------------------------------------


async def test_the_more_serious_reason_wins_when_answers_race() -> None:
    k = keeper()
    await k.close(NOW + 60, GateReason.AUTH, "401")
    await k.close(NOW + 900, GateReason.RATE_LIMITED, "429")  # less serious: reason kept
    assert k.gate == Gate(NOW + 900, GateReason.AUTH, "401")  # ... the later end taken
    await k.close(NOW + 30, GateReason.RATE_LIMITED, "429")
    assert k.gate.until == NOW + 900

    k = keeper()
    await k.close(NOW + 60, GateReason.DAILY_BUDGET, "budget")
    await k.close(NOW + 30, GateReason.RATE_LIMITED, "429")  # more serious: it wins
    assert k.gate == Gate(NOW + 60, GateReason.RATE_LIMITED, "429")
    await k.close(NOW + 30, GateReason.CREDITS, "402")
    assert k.gate.reason is GateReason.CREDITS


async def test_an_open_or_probing_gate_takes_the_new_answer_as_it_is() -> None:
    clock = Clock()
    k = keeper(clock=clock)
    await k.close(NOW + 60, GateReason.AUTH, "401")
    clock.now = NOW + 61  # past the wall: probing, the reason kept
    assert not k.gate.closed(clock.now) and k.gate.reason is GateReason.AUTH
    await k.close(NOW + 70, GateReason.RATE_LIMITED, "429")
    assert k.gate == Gate(NOW + 70, GateReason.RATE_LIMITED, "429")


async def test_one_log_line_per_state_change(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.gate")
    k = keeper()
    await k.close(NOW + 60, GateReason.RATE_LIMITED, "429")
    await k.close(NOW + 60, GateReason.RATE_LIMITED, "429")  # a racing answer, same news
    await k.close(NOW + 60.5, GateReason.RATE_LIMITED, "429")  # hardly later: not news
    assert events(caplog) == ["gate_closed"]
    await k.close(NOW + 120, GateReason.RATE_LIMITED, "429")  # a minute later: news
    await k.close(NOW + 60, GateReason.AUTH, "401")  # another reason: news
    assert events(caplog) == ["gate_closed"] * 3
    assert "reason=auth until=2027-01-15T08:02:00Z" in caplog.records[-1].getMessage()
    await k.open()
    assert events(caplog)[-1] == "gate_opened" and k.gate == Gate()


async def test_posting_stopped_is_said_once_and_not_twice(
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.gate")
    clock = Clock()
    k = keeper(clock=clock)
    await k.stop(GateReason.CREDITS, "out of credits", 300)
    assert k.gate == Gate(NOW + 300, GateReason.CREDITS, "out of credits")
    clock.now += 301  # the probe gets the same answer
    await k.stop(GateReason.CREDITS, "out of credits", 300)
    assert k.gate.until == clock.now + 300
    assert events(caplog) == ["posting_stopped", "gate_closed"]
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.WARNING]
    assert k.health(clock.now)["posting_broken"] is True


async def test_wall_gone_opens_a_probing_gate_only() -> None:
    clock = Clock()
    k = keeper(clock=clock)
    await k.close(NOW + 60, GateReason.RATE_LIMITED, "429")
    await k.wall_gone(clock.now, posted=True)  # an answer from before the wall
    assert k.gate.closed(clock.now)
    clock.now = NOW + 61
    assert k.health(clock.now)["gate"] == {"open": True, "reason": "", "seconds_left": 0.0,
                                           "detail": "", "probing": True}
    await k.wall_gone(clock.now, posted=False)  # X refused a text: it read the request
    assert k.gate == Gate()
    assert k.health(clock.now) == {
        "gate": {"open": True, "reason": "", "seconds_left": 0.0, "detail": "",
                 "probing": False},
        "posting_broken": False}


async def test_429_waits_for_the_named_reset_else_backs_off_by_strikes() -> None:
    clock = Clock()
    k = keeper(clock=clock)
    await k.rate_limited(NOW, None, "429")
    assert k.gate.until == NOW + 10
    clock.now = NOW + 10
    await k.rate_limited(clock.now, clock.now - 5, "429")  # a reset already past: a strike
    assert k.gate.until == clock.now + 20
    clock.now += 20
    await k.rate_limited(clock.now, clock.now + 7, "429")  # a usable reset ends the run
    assert k.gate.until == clock.now + 7
    clock.now += 7
    await k.rate_limited(clock.now, None, "429")
    assert k.gate.until == clock.now + 10
    clock.now += 10
    await k.wall_gone(clock.now, posted=False)  # a refused text does not end the run ...
    await k.rate_limited(clock.now, None, "429")
    assert k.gate.until == clock.now + 20
    clock.now += 20
    await k.wall_gone(clock.now, posted=True)  # ... a post that went out does
    await k.rate_limited(clock.now, None, "429")
    assert k.gate.until == clock.now + 10
    await k.rate_limited(clock.now, clock.now + 10 * DAY, "garbled reset")
    assert k.gate.until == clock.now + MAX_GATE


# -- persistence and start-up ------------------------------------------------------------------


async def test_every_change_is_written_before_close_returns() -> None:
    meta = Meta()
    k = keeper(meta)
    await k.close(NOW + 60, GateReason.RATE_LIMITED, "429")
    assert Gate.from_json(meta.meta[GATE_KEY]) == k.gate
    await k.open()
    assert Gate.from_json(meta.meta[GATE_KEY]) == Gate()


async def test_round_trip_through_the_store(tmp_path: Path) -> None:
    path = str(tmp_path / "gate.sqlite3")
    store = await Store.open(path)
    try:
        await keeper(store).close(NOW + 600, GateReason.RATE_LIMITED, "HTTP 429")  # type: ignore[arg-type]
    finally:
        await store.close()
    store = await Store.open(path)
    try:
        again = keeper(store)  # type: ignore[arg-type]
        await again.load()
    finally:
        await store.close()
    assert again.gate == Gate(NOW + 600, GateReason.RATE_LIMITED, "HTTP 429")


async def load(saved: Gate, caplog: pytest.LogCaptureFixture) -> Gatekeeper:
    meta = Meta()
    meta.meta[GATE_KEY] = saved.to_json()
    k = keeper(meta)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bot.gate"):
        await k.load()
    return k


async def test_restart_keeps_a_wall_x_put_up(caplog: pytest.LogCaptureFixture) -> None:
    k = await load(Gate(NOW + 600, GateReason.RATE_LIMITED, "429"), caplog)
    assert k.gate == Gate(NOW + 600, GateReason.RATE_LIMITED, "429")
    assert events(caplog) == ["gate_closed"]
    assert "(from before the restart)" in caplog.text


async def test_restart_cuts_a_wall_too_far_away(caplog: pytest.LogCaptureFixture) -> None:
    k = await load(Gate(NOW + 1000 * DAY, GateReason.RATE_LIMITED, "ms?"), caplog)
    assert k.gate.until == NOW + MAX_GATE


async def test_restart_drops_the_budget_gate(caplog: pytest.LogCaptureFixture) -> None:
    k = await load(Gate(NOW + 600, GateReason.DAILY_BUDGET, "MAX_POSTS_PER_DAY=2"), caplog)
    assert k.gate == Gate()
    assert caplog.records == []


@pytest.mark.parametrize("reason", [GateReason.AUTH, GateReason.CREDITS])
async def test_restart_probes_broken_posting_at_once(
    caplog: pytest.LogCaptureFixture, reason: GateReason
) -> None:
    k = await load(Gate(NOW + 300, reason, "check the token"), caplog)
    assert k.gate == Gate(0.0, reason, "check the token")  # open, probing, still broken
    assert events(caplog) == ["posting_stopped"]
    # a warning: the restart may have brought the fix; a probe refused again is an ERROR
    assert caplog.records[0].levelno == logging.WARNING
    health = k.health(NOW)
    assert health["posting_broken"] is True
    assert health["gate"] == {"open": True, "reason": reason.value, "seconds_left": 0.0,
                              "detail": "check the token", "probing": True}


async def test_restart_with_an_open_gate_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    k = await load(Gate(NOW - 5, GateReason.RATE_LIMITED, "429"), caplog)
    assert not k.gate.closed(NOW) and k.gate.reason is GateReason.RATE_LIMITED  # probing
    assert caplog.records == []


# -- the daily budget --------------------------------------------------------------------------


async def test_no_budget_costs_no_query() -> None:
    meta = Meta(sent=[NOW - 1] * 50)
    assert await keeper(meta).budget(NOW, 3) == (sys.maxsize, None, GateReason.NONE, "")
    assert meta.sent_since_calls == 0


async def test_budget_room_and_when_it_reopens() -> None:
    sent = [NOW - DAY - 10, NOW - 3000, NOW - 2000, NOW - 1000]  # the first is a day old
    k = keeper(Meta(sent=sent), max_per_day=5)
    daily = (GateReason.DAILY_BUDGET, "MAX_POSTS_PER_DAY=5 reached")
    assert (await k.budget(NOW, 0))[:2] == (2, None)
    assert (await k.budget(NOW, 1))[:2] == (1, None)
    # full: the oldest sends in the window have to leave it to make room for one more ...
    assert await k.budget(NOW, 2) == (0, NOW - 3000 + DAY, *daily)
    assert await k.budget(NOW, 3) == (0, NOW - 2000 + DAY, *daily)
    # ... unless the posts in flight hold the budget: one of them ending is the next news
    assert (await k.budget(NOW, 5))[:2] == (0, None)
    k.max_per_day = 3
    assert (await k.budget(NOW, 0))[:2] == (0, NOW - 3000 + DAY)
    room, until, reason, why = await k.budget(NOW, 1)
    assert (room, until) == (0, NOW - 2000 + DAY)
    await k.close_for_budget(until, reason, why)  # type: ignore[arg-type]
    assert k.gate == Gate(NOW - 2000 + DAY, GateReason.DAILY_BUDGET,
                          "MAX_POSTS_PER_DAY=3 reached")


async def test_a_monthly_spend_cap_counts_30_days_and_the_later_reopening_wins() -> None:
    month = 30 * DAY
    sent = [NOW - month - 5, NOW - 20 * DAY, NOW - 2 * DAY, NOW - 3000, NOW - 1000]
    k = keeper(Meta(sent=sent))
    k.max_spend_per_month, k.cost_per_post = 1.0, 0.25  # four posts a month
    room, until, reason, why = await k.budget(NOW, 0)
    assert (room, until, reason) == (0, NOW - 20 * DAY + month, GateReason.SPEND_BUDGET)
    assert why == ("X_MAX_SPEND_PER_MONTH=1 reached (4 posts in 30 days at "
                   "X_COST_PER_POST=0.25)")
    k.max_per_day = 2  # both full: the gate stays closed until both have room
    room, until, reason, _ = await k.budget(NOW, 0)
    assert (room, until, reason) == (0, NOW - 20 * DAY + month, GateReason.SPEND_BUDGET)
    k.max_per_day, k.cost_per_post = None, 0.0  # posts that cost nothing: no cap to apply
    assert (await k.budget(NOW, 0))[0] == sys.maxsize


async def test_after_a_restart_a_probe_refused_again_is_an_error_once(
    caplog: pytest.LogCaptureFixture
) -> None:
    k = await load(Gate(NOW + 300, GateReason.AUTH, "check the token"), caplog)
    caplog.clear()
    await k.stop(GateReason.AUTH, "check the token", 300)  # the probe: refused again
    await k.stop(GateReason.AUTH, "check the token", 300)  # and again: said once
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage().split()[0] for r in errors] == ["posting_stopped"]
