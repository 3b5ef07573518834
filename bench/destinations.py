"""Benchmark 5 (issue 15): a burst of new articles posted to X, Mastodon and Bluesky at once,
one of them slow.

One blog publishes ``articles`` new articles at once (after the bot has baselined it; ``others``
quiet blogs are polled beside it). The bot runs with three destinations configured against the
loopback fakes of ``tests/fakes`` — :class:`~tests.fakes.fake_x.FakeX` (OAuth checked),
:class:`~tests.fakes.fake_mastodon.FakeMastodon` (Idempotency-Key) and
:class:`~tests.fakes.fake_bluesky.FakePDS` (login, record keys) — each answering every call
after a fixed ``delay``: X 20 ms, Mastodon 20 ms, Bluesky 200 ms (the slow one). Every
destination has its own dispatcher, at ``MAX_CONCURRENT_POSTS``.

Per network we measure the drain: from the articles being recorded (the poll's one
transaction committed: the moment the poller wakes the dispatchers) to that network's last
post confirmed (its ``sent_at`` in the posts table: the bot has the answer and wrote it down),
against the ideal ``ceil(articles / MAX_CONCURRENT_POSTS) x delay``: every slot busy all the
time, nothing but the network's delay. Target (issue 15): each within 1.1x its own ideal, so
the fast networks finish at their own pace, not the slow one's. Each fake must have received
every article exactly once (no duplicate, none missing).

Per ``MAX_CONCURRENT_POSTS`` (4, the default, and 16) three runs, each in child processes of
its own: the bot posting to the three networks; the bot posting to X alone (X's drain without
the others beside it); and the baseline, a bare aiohttp loop posting the same texts to the three
fakes at the same concurrency, no bot, no database (what this machine allows: at 20 ms the
loopback round trip and the scheduling of two busy processes are no longer nothing).

The fakes run in a process of their own (``--fakes``), as a network's servers would: in the
bot's process their work (OAuth checks, JWTs, HTTP servers) would be charged to the bot's event
loop. ``--in-process`` (``python -m bench.destinations``) puts them in the bot's process, as
``bench/burst.py`` does, for comparison.

Also measured, to say where the time goes: each network call's duration (the delay plus what
the HTTP client and the machine add) and the slots' time outside a call (the bot's own: writing
the answer down, the dispatcher's next pass, claiming the next post); how full each
destination's slots were kept; the store's connection (trips, the time its lock is held and
waited for, the statements' own time); the bot process's CPU; what the other networks had done
when each one finished; the quiet feeds' cadence and the event-loop lag meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import math
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    RESULT_PREFIX,
    ROOT,
    LagProbe,
    burst_blogs,
    cpu_seconds,
    fmt,
    load_average,
    log_line,
    percentile,
    quiet_logging,
    report,
    run_child,
)

NETWORKS = ("x", "mastodon", "bluesky")
DELAYS = {"x": 0.02, "mastodon": 0.02, "bluesky": 0.2}  # seconds before each answer
FULL: dict[str, Any] = dict(articles=1000, others=20, interval=2.0, concurrency=(4, 16))
QUICK: dict[str, Any] = dict(articles=200, others=20, interval=1.0, concurrency=(4, 16))
TARGET = 1.1  # issue 15: each network within 1.1x its own ideal time

X_KEYS = {"TWITTER_API_KEY": "ck", "TWITTER_API_SECRET": "cs",
          "TWITTER_ACCESS_TOKEN": "at", "TWITTER_ACCESS_TOKEN_SECRET": "ats"}
MASTODON_TOKEN = "bench-mastodon-token"
BLUESKY_HANDLE = "bench.test"
BLUESKY_PASSWORD = "abcd-efgh-ijkl-mnop"
FAKES_PREFIX = "FAKES="
_ARTICLE = re.compile(r"Burst article (\d+)\b")


def ideal_s(articles: int, concurrency: int, delay: float) -> float:
    """Every slot busy all the time, nothing but the network's delay."""
    return math.ceil(articles / concurrency) * delay


# --------------------------------------------------------------------------- the fakes

class Fakes:
    """The three fakes, started together; :meth:`summary` says what each received."""

    def __init__(self, delays: dict[str, float]) -> None:
        from tests.fakes.fake_bluesky import FakePDS
        from tests.fakes.fake_mastodon import FakeMastodon
        from tests.fakes.fake_x import FakeX

        self.x = FakeX(delay=delays["x"])
        self.mastodon = FakeMastodon(token=MASTODON_TOKEN, delay=delays["mastodon"])
        self.bluesky = FakePDS(handle=BLUESKY_HANDLE, app_password=BLUESKY_PASSWORD,
                               delay=delays["bluesky"])

    async def start(self) -> dict[str, str]:
        urls = {"x": await self.x.start(), "mastodon": await self.mastodon.start(),
                "bluesky": await self.bluesky.start()}
        self._cpu0 = time.process_time()
        return urls

    async def close(self) -> None:
        for fake in (self.x, self.mastodon, self.bluesky):
            await fake.close()

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per network: the posts it accepted (count, distinct texts, which articles, the first
        and last acceptance times), the post requests it answered by status, and the most
        requests it had in flight at once."""
        posts = {"x": [(t.text, t.at) for t in self.x.ledger],
                 "mastodon": [(s.text, s.at) for s in self.mastodon.statuses],
                 "bluesky": [(r.text, r.at) for r in self.bluesky.records
                             if r.collection == "app.bsky.feed.post"]}
        requests = {
            "x": collections.Counter(str(r.status) for r in self.x.requests),
            "mastodon": collections.Counter(
                str(r.status) + (" replayed" if r.replayed else "")
                for r in self.mastodon.requests),
            "bluesky": collections.Counter(f"{r.nsid.rsplit('.', 1)[-1]} {r.status}"
                                           for r in self.bluesky.requests),
        }
        in_flight = {"x": self.x.max_in_flight, "mastodon": self.mastodon.max_in_flight,
                     "bluesky": self.bluesky.max_in_flight}
        out: dict[str, Any] = {"cpu_s": time.process_time() - self._cpu0}
        for net in NETWORKS:
            texts = [text for text, _ in posts[net]]
            numbers = [int(m.group(1)) for t in texts if (m := _ARTICLE.search(t))]
            times = [at for _, at in posts[net]]
            out[net] = {
                "posts": len(texts), "distinct_texts": len(set(texts)),
                "articles": len(set(numbers)), "article_max": max(numbers, default=-1),
                "first_at": min(times, default=0.0), "last_at": max(times, default=0.0),
                "requests": dict(requests[net]), "max_in_flight": in_flight[net],
            }
        return out


async def fakes_main(delays: dict[str, float]) -> None:
    """``--fakes``: serve the three fakes; print their URLs; on each ``report`` line read
    from stdin print their summary; stop at the end of stdin."""
    fakes = Fakes(delays)
    urls = await fakes.start()
    print(FAKES_PREFIX + json.dumps(urls), flush=True)
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            break
        if line.strip() == "report":
            report(fakes.summary())
    await fakes.close()


@contextlib.contextmanager
def fakes_process(delays: dict[str, float]) -> Iterator[tuple[dict[str, str],
                                                              subprocess.Popen[str]]]:
    cmd = [sys.executable, "-m", "bench.destinations", "--fakes", json.dumps(delays)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith(FAKES_PREFIX):
            raise RuntimeError(f"the fakes did not start: {line!r}")
        yield json.loads(line[len(FAKES_PREFIX):]), proc
    finally:
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fakes_report(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("report\n")
    proc.stdin.flush()
    for line in proc.stdout:
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])  # type: ignore[no-any-return]
    raise RuntimeError("the fakes process ended without a report")


# --------------------------------------------------------------------------- the bot (child)

async def burst_child(a: dict[str, Any]) -> dict[str, Any]:
    from bot.config import Settings
    from bot.worker import Worker
    from tests.fakes.feed_server import FeedServer

    quiet_logging(Path(a["db"]).with_suffix(".log"))
    fakes: Fakes | None = None
    if a.get("in_process"):
        fakes = Fakes(a["delays"])
        urls = await fakes.start()
    else:
        urls = a["urls"]
    server = FeedServer()
    await server.start()
    busy, quiet = burst_blogs(server, a["articles"], a["others"])
    n, c = a["articles"], a["concurrency"]
    networks = tuple(a.get("networks", NETWORKS))  # the destinations configured
    env = {"FEED_URLS": ",".join([busy.url] + [b.url for b in quiet]), "DATABASE_PATH": a["db"],
           "POLL_INTERVAL": str(a["interval"]), "MAX_CONCURRENT_POSTS": str(c),
           **a.get("env", {})}
    if "x" in networks:
        env.update(X_KEYS, TWITTER_API_BASE_URL=urls["x"])
    if "mastodon" in networks:
        env.update(MASTODON_BASE_URL=urls["mastodon"], MASTODON_ACCESS_TOKEN=MASTODON_TOKEN)
    if "bluesky" in networks:
        env.update(BLUESKY_HANDLE=BLUESKY_HANDLE, BLUESKY_APP_PASSWORD=BLUESKY_PASSWORD,
                   BLUESKY_SERVICE_URL=urls["bluesky"])
    worker = Worker(Settings.from_env(env))
    await worker.start()
    assert worker.poller is not None
    assert tuple(worker.dispatchers) == networks, worker.dispatchers

    # the moment the articles are recorded: the poll's transaction is committed and the
    # poller wakes the dispatchers (bot/poll.py: record_poll, then wake)
    wakes: list[tuple[float, float]] = []
    loop_cpu: list[float] = []  # the event loop's own thread
    wake = worker.poller.wake

    def recorded() -> None:
        if not wakes:
            trips.reset()  # the store's figures: from here on
        wakes.append((time.time(), cpu_seconds()))
        loop_cpu.append(time.thread_time())
        wake()

    worker.poller.wake = recorded
    # each network call timed: what the network took, apart from what the bot took
    calls: dict[str, list[tuple[float, float]]] = {net: [] for net in networks}
    confirmed: collections.Counter[str] = collections.Counter()
    for net, d in worker.dispatchers.items():
        d.client = _Timed(d.client, calls[net], confirmed, net)
    # the store's one connection: its lock (every trip to aiosqlite's thread holds it) and
    # the statements' own time in that thread
    db = worker.store._database  # type: ignore[union-attr]
    trips = _Trips(db.lock)
    db.lock = trips  # type: ignore[assignment]
    run_trip = db.run

    async def timed_run(fn: Any) -> Any:
        return await run_trip(trips.timed(fn))

    db.run = timed_run  # type: ignore[method-assign]
    run = asyncio.create_task(worker.run())
    while not all(f.baselined for f in worker.feeds.values()):  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    await asyncio.sleep(a["interval"])  # one quiet round: steady state

    def sent(net: str) -> int:
        """Posts the network confirmed (counted by the timing wrapper: reading the metrics
        registry walks every metric, which cost the bot more than the posting did)."""
        return confirmed[net]

    # how many posts each destination has in flight, sampled every 5 ms during its drain
    occupancy: dict[str, list[int]] = {net: [] for net in networks}

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.005)
            if wakes:
                for net, d in worker.dispatchers.items():
                    if sent(net) < n:
                        occupancy[net].append(d.in_flight)

    probe = LagProbe(every=0.01).start()
    sampler = asyncio.create_task(sample())
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=n)
    t0, cpu0 = time.time(), cpu_seconds()
    for k in range(n):
        busy.publish(f"Burst article {k}", published=base + timedelta(seconds=k),
                     summary=f"Article {k} of the burst.")
    worst = max(ideal_s(n, c, d) for d in a["delays"].values())
    deadline = t0 + worst * 3 + 60
    # until every network confirmed every post and the bot wrote each answer down
    early: dict[str, Any] = {}  # the store's figures when the first network was done
    while time.time() < deadline and (any(sent(net) < n for net in networks)
                                      or any(d.in_flight for d in worker.dispatchers.values())):
        await asyncio.sleep(0.02)
        if not early and any(sent(net) >= n for net in networks):
            early = trips.summary(time.time() - wakes[0][0])
            early.update(wall_s=time.time() - wakes[0][0], cpu_s=cpu_seconds() - wakes[0][1])
    t1, cpu1, loop1 = time.time(), cpu_seconds(), time.thread_time()
    db_trips = trips.summary(t1 - wakes[0][0] if wakes else 0.0)
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    lag = await probe.stop()
    worker.stop()
    await run
    await worker.close()
    gaps: list[float] = []
    for blog in quiet:
        times = [t for t in server.hit_times[blog.path] if t0 <= _wall(t) <= t1]
        gaps.extend(abs((q - p) - a["interval"]) / a["interval"]
                    for p, q in itertools.pairwise(times))
    await server.close()
    fakes_summary = None
    if fakes is not None:
        fakes_summary = fakes.summary()
        await fakes.close()

    recorded_at, cpu_rec = wakes[0] if wakes else (t1, cpu1)
    # what the bot wrote down, per destination (the posts of the burst are the only posts)
    with sqlite3.connect(a["db"]) as conn:
        states = {(d, s): cnt for d, s, cnt in conn.execute(
            "SELECT destination, state, COUNT(*) FROM posts GROUP BY destination, state")}
        sent_at = {net: [t for (t,) in conn.execute(
            "SELECT sent_at FROM posts WHERE destination = ? AND state = 'sent' "
            "ORDER BY sent_at", (net,))] for net in networks}
        attempts = {net: dict(conn.execute(
            "SELECT attempts, COUNT(*) FROM posts WHERE destination = ? GROUP BY attempts",
            (net,)).fetchall()) for net in networks}
    nets: dict[str, Any] = {}
    for net in networks:
        times = sent_at[net]
        done_at = times[-1] if len(times) >= n else None
        drain = (done_at - recorded_at) if done_at is not None else None
        ideal = ideal_s(n, c, a["delays"][net])
        nets[net] = {
            "delay_s": a["delays"][net], "sent": len(times),
            "states": {s: cnt for (d, s), cnt in states.items() if d == net},
            "attempts": attempts[net], "ideal_s": ideal, "drain_s": drain,
            "ratio": drain / ideal if drain is not None else None,
            "first_sent_s": times[0] - recorded_at if times else None,
            "done_at": done_at,
            "slots_mean": (sum(occupancy[net]) / len(occupancy[net])
                           if occupancy[net] else 0.0),
            **_call_times(calls[net], a["delays"][net], c, drain),
        }
    for net in networks:  # what the others had done when this one was done
        done_at = nets[net]["done_at"]
        nets[net]["others_then"] = {
            other: sum(1 for t in sent_at[other] if done_at is not None and t <= done_at)
            for other in networks if other != net}
    posted = sum(len(v) for v in sent_at.values())
    return {
        "articles": n, "concurrency": c, "networks": nets, "in_process": bool(fakes),
        "detect_s": recorded_at - t0, "total_s": t1 - t0,
        "cpu_s": cpu1 - cpu_rec, "cpu_ms_per_post": (cpu1 - cpu_rec) / max(1, posted) * 1000,
        "cpu_util": (cpu1 - cpu_rec) / max(1e-9, t1 - recorded_at),
        "loop_thread_ms_per_post": (loop1 - loop_cpu[0]) / max(1, posted) * 1000
        if loop_cpu else 0.0,
        "cpu_record_s": cpu_rec - cpu0,  # fetch, parse, compose x3 and the one transaction
        "cadence_dev_max": max(gaps, default=0.0), "cadence_dev_p99": percentile(gaps, 99),
        **lag, "db": db_trips, "db_early": early, "fakes": fakes_summary,
    }


# --------------------------------------------------------------------------- bare loop (child)

async def bare_child(a: dict[str, Any]) -> dict[str, Any]:
    """The baseline: no bot, no database; a bare aiohttp loop posting the same ``articles``
    texts to each fake at ``concurrency`` at once (X signed with OAuth 1.0a, Mastodon with
    its token and an Idempotency-Key, Bluesky after one login), all networks at the same
    time. What this machine allows, measured the same way as the bot."""
    import aiohttp
    import oauthlib.oauth1

    n, c, urls = a["articles"], a["concurrency"], a["urls"]
    networks = tuple(a.get("networks", NETWORKS))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    oauth = oauthlib.oauth1.Client(X_KEYS["TWITTER_API_KEY"],
                                   client_secret=X_KEYS["TWITTER_API_SECRET"],
                                   resource_owner_key=X_KEYS["TWITTER_ACCESS_TOKEN"],
                                   resource_owner_secret=X_KEYS["TWITTER_ACCESS_TOKEN_SECRET"])
    bluesky: dict[str, str] = {}
    login = asyncio.Lock()

    def text(k: int) -> str:
        return f"Burst article {k} http://127.0.0.1/busy/posts/{k + 2}"

    async def post(net: str, k: int) -> None:
        if net == "x":
            url = urls["x"] + "/2/tweets"
            _, headers, _ = oauth.sign(url, http_method="POST")
            body: dict[str, Any] = {"text": text(k)}
        elif net == "mastodon":
            url = urls["mastodon"] + "/api/v1/statuses"
            headers = {"Authorization": f"Bearer {MASTODON_TOKEN}",
                       "Idempotency-Key": f"bare-{k}"}
            body = {"status": text(k)}
        else:
            async with login:
                if not bluesky:
                    async with session.post(
                            urls["bluesky"] + "/xrpc/com.atproto.server.createSession",
                            json={"identifier": BLUESKY_HANDLE,
                                  "password": BLUESKY_PASSWORD}) as resp:
                        bluesky.update(await resp.json())
            url = urls["bluesky"] + "/xrpc/com.atproto.repo.createRecord"
            headers = {"Authorization": f"Bearer {bluesky['accessJwt']}"}
            created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            body = {"repo": bluesky["did"], "collection": "app.bsky.feed.post",
                    "record": {"$type": "app.bsky.feed.post", "text": text(k),
                               "createdAt": created}}
        async with session.post(url, json=body, headers=headers) as resp:
            await resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"{net} answered {resp.status}")

    done: dict[str, list[float]] = {net: [] for net in networks}
    calls: dict[str, list[tuple[float, float]]] = {net: [] for net in networks}

    async def slot(net: str, todo: Iterator[int]) -> None:
        for k in todo:
            start = time.time()
            await post(net, k)
            calls[net].append((start, time.time()))
            done[net].append(time.time())

    probe = LagProbe(every=0.01).start()
    t0, cpu0 = time.time(), cpu_seconds()
    todo = {net: iter(range(n)) for net in networks}
    await asyncio.gather(*(slot(net, todo[net]) for net in networks for _ in range(c)))
    t1, cpu1 = time.time(), cpu_seconds()
    lag = await probe.stop()
    await session.close()
    nets = {}
    for net in networks:
        drain = max(done[net]) - t0
        ideal = ideal_s(n, c, a["delays"][net])
        nets[net] = {"delay_s": a["delays"][net], "sent": len(done[net]), "drain_s": drain,
                     "ideal_s": ideal, "ratio": drain / ideal,
                     **_call_times(calls[net], a["delays"][net], c, drain)}
    return {"articles": n, "concurrency": c, "networks": nets, "total_s": t1 - t0,
            "cpu_s": cpu1 - cpu0, "cpu_ms_per_post": (cpu1 - cpu0) / (n * len(networks)) * 1000,
            **lag}


class _Trips:
    """Stands in for the store's lock (``Database.lock``): counts the trips to the database
    thread, the time spent waiting for the lock and holding it, and (:meth:`timed`) the time
    the statements themselves took in that thread."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock
        self._asked: list[float] = []
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.waited = self.held = self.sql = 0.0
        self.max_waiters = 0
        self.holds: list[float] = []

    def timed(self, fn: Any) -> Any:
        def run(conn: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(conn)
            finally:
                self.sql += time.perf_counter() - start  # one thread at a time: no race
        return run

    async def __aenter__(self) -> None:
        asked = time.perf_counter()
        self._asked.append(asked)
        self.max_waiters = max(self.max_waiters, len(self._asked))
        try:
            await self._lock.acquire()
        finally:
            self._asked.remove(asked)
        self._got = time.perf_counter()
        self.waited += self._got - asked
        self.count += 1

    async def __aexit__(self, *exc_info: object) -> None:
        held = time.perf_counter() - self._got
        self.held += held
        self.holds.append(held)
        self._lock.release()

    def summary(self, window: float) -> dict[str, float]:
        return {"trips": self.count, "busy": self.held / window if window else 0.0,
                "held_ms": self.held / max(1, self.count) * 1000,
                "held_p50_ms": percentile(self.holds, 50) * 1000,
                "held_p99_ms": percentile(self.holds, 99) * 1000,
                "sql_ms": self.sql / max(1, self.count) * 1000,
                "waited_ms": self.waited / max(1, self.count) * 1000,
                "max_waiters": self.max_waiters}


class _Timed:
    """A network client whose every ``send`` is timed (start, end); the rest is the client's."""

    def __init__(self, client: Any, calls: list[tuple[float, float]],
                 confirmed: collections.Counter[str], net: str) -> None:
        self._client = client
        self._calls = calls
        self._confirmed = confirmed
        self._net = net

    async def send(self, delivery: Any) -> Any:
        start = time.time()
        try:
            outcome = await self._client.send(delivery)
        finally:
            self._calls.append((start, time.time()))
        if outcome.kind in ("sent", "duplicate"):
            self._confirmed[self._net] += 1
        return outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


_MONO_OFFSET = time.time() - time.monotonic()


def _wall(mono: float) -> float:
    """FeedServer records time.monotonic(); compare with wall-clock marks."""
    return mono + _MONO_OFFSET


def _call_times(calls: list[tuple[float, float]], delay: float, c: int,
                drain: float | None) -> dict[str, Any]:
    """How long the network calls took (the client's send, the fake's delay included), and
    what was left of the ideal: the slots' time not spent in a call, per post."""
    took = sorted(end - start for start, end in calls)
    busy = sum(took)
    return {
        "calls": len(took), "call_p50_ms": percentile(took, 50) * 1000,
        "call_p99_ms": percentile(took, 99) * 1000, "call_max_ms": max(took, default=0) * 1000,
        "call_over_delay_ms": (busy / len(took) - delay) * 1000 if took else 0.0,
        # slot-seconds of the drain not spent in a call, per post: the bot's own time
        "between_calls_ms": ((c * drain - busy) / len(took) * 1000
                             if took and drain is not None else None),
    }


# --------------------------------------------------------------------------- driver

def run_one(p: dict[str, Any], c: int, networks: tuple[str, ...], db: str,
            in_process: bool = False, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One burst in a child process (the bot), the fakes in another (or in the bot's)."""
    args = dict(articles=p["articles"], others=p["others"], interval=p["interval"],
                concurrency=c, delays=p["delays"], db=db, in_process=in_process,
                networks=networks, env=env or {})
    budget = max(ideal_s(p["articles"], c, p["delays"][n]) for n in networks) * 3 + 180
    if in_process:
        return run_child("bench.destinations", args, budget)
    with fakes_process(p["delays"]) as (urls, proc):
        r = run_child("bench.destinations", dict(args, urls=urls), budget)
        r["fakes"] = fakes_report(proc)
    return r


def run_bare(p: dict[str, Any], c: int, networks: tuple[str, ...]) -> dict[str, Any]:
    """The baseline (:func:`bare_child`) against fakes of its own."""
    args = dict(articles=p["articles"], concurrency=c, delays=p["delays"], networks=networks,
                bare=True)
    budget = max(ideal_s(p["articles"], c, p["delays"][n]) for n in networks) * 3 + 120
    with fakes_process(p["delays"]) as (urls, proc):
        r = run_child("bench.destinations", dict(args, urls=urls), budget)
        r["fakes"] = fakes_report(proc)
    return r


def run(quick: bool = False, delays: dict[str, float] | None = None,
        in_process: bool = False) -> dict[str, Any]:
    """Per ``MAX_CONCURRENT_POSTS``: the bot posting to the three networks, the bot posting
    to X alone (what X's drain is without the others), and the bare loop posting to the
    three (what this machine allows)."""
    p = dict(QUICK if quick else FULL, delays={**DELAYS, **(delays or {})})
    log_line(f"\n== destinations: {p['articles']} new articles at once on one blog, posted to "
             f"X, Mastodon and Bluesky (fakes answering after "
             f"{', '.join(f'{k} {v * 1000:g} ms' for k, v in p['delays'].items())}; "
             f"{'in the bot process' if in_process else 'in a process of their own'}), "
             f"{p['others']} other feeds polled every {p['interval']:g}s (load "
             f"{load_average()})")
    out: dict[str, Any] = {"params": dict(p, in_process=in_process)}
    summary: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-destinations-"))
    try:
        for c in p["concurrency"]:
            out[f"bot_{c}"] = bot = run_one(p, c, NETWORKS, str(tmp / f"three{c}.sqlite3"),
                                            in_process)
            summary.update(_print(bot, p["articles"], c))
            out[f"x_alone_{c}"] = alone = run_one(p, c, ("x",), str(tmp / f"x{c}.sqlite3"),
                                                  in_process)
            summary.update(_print(alone, p["articles"], c))
            out[f"bare_{c}"] = bare = run_bare(p, c, NETWORKS)
            summary.update(_print_bare(bot, alone, bare, p["articles"], c))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["summary"] = summary
    return out


def _ratio(r: dict[str, Any], net: str) -> float | None:
    return r["networks"][net]["ratio"]  # type: ignore[no-any-return]


def _print_bare(bot: dict[str, Any], alone: dict[str, Any], bare: dict[str, Any], n: int,
                c: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    parts = []
    for net in NETWORKS:
        m, f = bare["networks"][net], bare["fakes"][net]
        summary[f"ratio_{net}_bare_{c}"] = m["ratio"]
        ok = f["posts"] == n and f["distinct_texts"] == n
        parts.append(f"{net} {fmt(m['drain_s'], 2)} s ({fmt(m['ratio'])}x; calls the delay + "
                     f"{fmt(m['call_over_delay_ms'], 1)} ms{'' if ok else '; POSTS MISSING'})")
    log_line(f"  MAX_CONCURRENT_POSTS={c}, bare aiohttp loop, the three at once: "
             + ", ".join(parts))
    mine = []
    for net in NETWORKS:
        b, a = _ratio(bot, net), _ratio(bare, net)
        if b is not None and a:
            summary[f"bot_vs_bare_{net}_{c}"] = b / a
            mine.append(f"{net} {fmt(b / a)}x")
    x3, x1 = _ratio(bot, "x"), _ratio(alone, "x")
    if x3 is not None and x1:
        summary[f"x_beside_others_vs_alone_{c}"] = x3 / x1
    log_line(f"  => MAX_CONCURRENT_POSTS={c}: drain against the bare loop's: {', '.join(mine)}; "
             f"X beside the others against X alone: "
             f"{fmt(x3 / x1) + 'x' if x3 is not None and x1 else '-'}")
    return summary


def _print(r: dict[str, Any], n: int, c: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    nets = list(r["networks"])
    tag = "" if len(nets) == len(NETWORKS) else "_alone"
    log_line(f"  MAX_CONCURRENT_POSTS={c}, {' + '.join(nets)}: {n} articles recorded "
             f"{fmt(r['detect_s'], 1)} s after publication (fetch, parse, compose for "
             f"{len(nets)}, one transaction: {fmt(r['cpu_record_s'] * 1000, 0)} ms CPU)")
    for net in nets:
        m, f = r["networks"][net], r["fakes"][net]
        ok_count = (f["posts"] == n and f["distinct_texts"] == n and f["articles"] == n
                    and m["sent"] == n)
        met = m["ratio"] is not None and m["ratio"] <= TARGET
        summary[f"ratio_{net}{tag}_{c}"] = m["ratio"]
        summary[f"target_{net}{tag}_{c}"] = met
        summary[f"exactly_once_{net}{tag}_{c}"] = ok_count
        drain = f"{fmt(m['drain_s'], 2)} s" if m["drain_s"] is not None else "never"
        ratio = f"{fmt(m['ratio'])}x" if m["ratio"] is not None else "-"
        others = ", ".join(f"{o} {k}/{n}" for o, k in m["others_then"].items())
        log_line(f"    {net:9} {m['delay_s'] * 1000:4g} ms: drained in {drain} (ideal "
                 f"{fmt(m['ideal_s'], 2)} s): {ratio} (target <= {TARGET}x: "
                 f"{'met' if met else 'MISSED'}); slots kept busy {fmt(m['slots_mean'], 1)}/{c} "
                 f"on average, first post after {fmt(m['first_sent_s'] or 0, 2)} s"
                 + (f"; when it was done: {others}" if others else ""))
        between = (f"{fmt(m['between_calls_ms'], 1)} ms" if m["between_calls_ms"] is not None
                   else "-")
        log_line(f"    {'':9} network calls: p50 {fmt(m['call_p50_ms'], 1)} ms p99 "
                 f"{fmt(m['call_p99_ms'], 1)} ms max {fmt(m['call_max_ms'], 0)} ms (the delay "
                 f"+ {fmt(m['call_over_delay_ms'], 1)} ms on average); slot time outside a "
                 f"call: {between} per post")
        requests = ", ".join(f"{k}: {v}" for k, v in sorted(f["requests"].items()))
        log_line(f"    {'':9} the fake received {f['posts']} posts, {f['distinct_texts']} "
                 f"distinct, {f['articles']} of the {n} articles (exactly once: "
                 f"{'met' if ok_count else 'MISSED'}); requests answered {requests}; at most "
                 f"{f['max_in_flight']} in flight; the bot's posts {m['states']}, attempts "
                 f"{m['attempts']}")
    d, e = r["db"], r["db_early"]
    early_util = (f", until the first network was done "
                  f"{fmt(e['cpu_s'] / e['wall_s'] * 100, 0)}%" if len(nets) > 1 and e else "")
    log_line(f"    bot process CPU while draining: {fmt(r['cpu_s'], 2)} s, "
             f"{fmt(r['cpu_ms_per_post'], 2)} ms per post ({fmt(r['cpu_util'] * 100, 0)}% of "
             f"a core{early_util}; the event loop's thread "
             f"{fmt(r['loop_thread_ms_per_post'], 2)} ms per post); loop lag p99 "
             f"{fmt(r['lag_p99_ms'], 1)} ms max "
             f"{fmt(r['lag_max_ms'], 1)} ms; other feeds' cadence max deviation "
             f"{fmt(r['cadence_dev_max'] * 100, 1)}%")
    log_line(f"    the store's connection: {d['trips']} trips "
             f"({fmt(d['trips'] / (len(nets) * n), 2)} per post), the lock held "
             f"{fmt(d['busy'] * 100, 0)}% of the time (until the first network was done: "
             f"{fmt(e.get('busy', 0) * 100, 0)}%); per trip held {fmt(d['held_ms'], 2)} ms "
             f"(p50 {fmt(d['held_p50_ms'], 2)}, p99 {fmt(d['held_p99_ms'], 2)}) "
             f"(its statements {fmt(d['sql_ms'], 2)} ms), waited for {fmt(d['waited_ms'], 2)} "
             f"ms, at most {d['max_waiters']} waiting"
             + (f"; the fakes' process: {fmt(r['fakes']['cpu_s'], 2)} s CPU"
                if not r.get("in_process") else ""))
    return summary


def parse_delays(value: str) -> dict[str, float]:
    """``x=0.02,mastodon=0.02,bluesky=0.2`` (seconds; networks left out keep theirs)."""
    out = {}
    for part in value.split(","):
        net, _, seconds = part.partition("=")
        if net.strip() not in NETWORKS:
            raise argparse.ArgumentTypeError(f"{net!r}: expected one of {', '.join(NETWORKS)}")
        out[net.strip()] = float(seconds)
    return out


def add_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--delays", type=parse_delays, metavar="NET=SECONDS,...",
                    help="destinations: the fakes' answer delays (default x=0.02,"
                         "mastodon=0.02,bluesky=0.2)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--fakes", metavar="DELAYS_JSON")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--in-process", action="store_true",
                    help="run the fakes in the bot's process (as bench/burst.py does)")
    add_options(ap)
    args = ap.parse_args()
    if args.fakes:
        asyncio.run(fakes_main(json.loads(args.fakes)))
    elif args.child:
        a = json.loads(args.child)
        report(asyncio.run(bare_child(a) if a.get("bare") else burst_child(a)))
    else:
        print(json.dumps(run(args.quick, args.delays, args.in_process)["summary"], indent=1))


if __name__ == "__main__":
    main()
