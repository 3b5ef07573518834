"""Benchmark 1: steady-state polling of many feeds, almost all answering 304.

The loopback server (:mod:`bench.loopserver`) runs in its own process. The bot (a real
:class:`bot.worker.Worker`, DRY_RUN) and a bare aiohttp loop doing the same conditional GETs
at the same concurrency each run in their own child process, one after the other, so each
one's CPU (``time.process_time()``: every thread of the process, so the executor and
aiosqlite threads count) and peak RSS are its own. The steady state is measured twice for
each, in the order bot, bare, bare, bot, so that a drift of the machine's speed over those
minutes weighs on both alike; the figures add up both runs of a side.

Both follow the same schedule: every feed is due at start, and each poll is due again
``interval`` seconds after it *started* (the bot's rule). After the first round (the bot
baselines every feed) a measurement window of ``cycles`` whole intervals begins at a
round's start; in it we count polls and CPU, and the server records when each feed was
requested, which gives the cadence: the gaps between one feed's requests vs the interval.

A second pair of runs measures saturation (``POLL_INTERVAL`` far below what the machine can
keep up with): the highest polls per second, and CPU per poll under load.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import (
    AS_IN_PRODUCTION,
    LagProbe,
    cpu_seconds,
    fmt,
    load_average,
    log_line,
    max_rss_mib,
    percentile,
    quiet_logging,
    report,
    rss_mib,
    run_child,
    subprocess_server,
)

FULL: dict[str, Any] = dict(feeds=10_000, interval=25.0, cycles=2, hosts=16, concurrency=20,
                            per_host=2, change_fraction=0.01, saturation_window=10.0)
QUICK: dict[str, Any] = dict(feeds=2_000, interval=6.0, cycles=2, hosts=16, concurrency=20,
                             per_host=2, change_fraction=0.01, saturation_window=5.0)


# Mastodon and Bluesky beside X (``--destinations 3``): each destination gets a dry-run
# poster, so nothing is sent anywhere; the URLs are never asked.
THREE_DESTINATIONS = {"MASTODON_BASE_URL": "http://127.0.0.1:9", "MASTODON_ACCESS_TOKEN": "m",
                      "BLUESKY_HANDLE": "bench.test", "BLUESKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop",
                      "BLUESKY_SERVICE_URL": "http://127.0.0.1:9"}


def feed_urls(port: int, feeds: int, hosts: int) -> list[str]:
    return [f"http://127.0.0.{1 + n % hosts}:{port}/f/{n}.xml" for n in range(feeds)]


def _server_call(port: int, path: str) -> dict[str, Any]:
    method = "POST" if path == "/_reset" else "GET"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


async def server_call(port: int, path: str) -> dict[str, Any]:
    return await asyncio.to_thread(_server_call, port, path)


# --------------------------------------------------------------------------- the bot (child)

async def bot_child(a: dict) -> dict[str, Any]:
    from bot.config import Settings
    from bot.twitter import DryRunClient
    from bot.worker import Worker

    quiet_logging(Path(a["db"]).with_suffix(".log"))
    urls = feed_urls(a["port"], a["feeds"], a["hosts"])
    env = {"FEED_URLS": ",".join(urls), "DATABASE_PATH": a["db"], **AS_IN_PRODUCTION,
           "POLL_INTERVAL": str(a["interval"]),
           "MAX_CONCURRENT_FETCHES": str(a["concurrency"]),
           "MAX_FETCHES_PER_HOST": str(a["per_host"]), "LOG_LEVEL": "INFO"}
    if a.get("destinations", 1) == 3:  # issue 15: X, Mastodon and Bluesky, as in production
        env.update(THREE_DESTINATIONS)
    settings = Settings.from_env(env)
    worker = Worker(settings, posters={d.name: DryRunClient(d.name)
                                       for d in settings.outlets})
    rss_start = rss_mib()
    await worker.start()
    t0 = time.time()
    run = asyncio.create_task(worker.run())

    def polls() -> float:
        get = worker.metrics.registry.get_sample_value
        return sum(get("bot_feed_polls_total", {"outcome": o}) or 0.0
                   for o in ("new", "unchanged", "not_modified", "error", "gone"))

    # first round: every feed is baselined (or, on a re-used database, polled once)
    while polls() < a["feeds"]:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    first_round = time.time() - t0
    result = await _measure(a, t0, polls, worker_lag=worker)
    worker.stop()
    await run
    await worker.close()
    result.update(first_round_s=first_round, rss_start_mib=rss_start,
                  max_rss_mib=max_rss_mib(), rss_end_mib=rss_mib(),
                  errors=worker.metrics.registry.get_sample_value(
                      "bot_feed_polls_total", {"outcome": "error"}))
    return result


async def _measure(a: dict, t0: float, polls, worker_lag=None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Wait for a round's start, then count polls and CPU over ``cycles`` intervals."""
    interval, saturated = a["interval"], a.get("saturated", False)
    if saturated:
        start_at = time.time()
        length = a["window"]
    else:
        k = int((time.time() - t0) / interval) + 1
        start_at = t0 + k * interval - 0.25
        length = a["cycles"] * interval
    await asyncio.sleep(max(0.0, start_at - time.time()))
    await server_call(a["port"], "/_reset")
    probe = LagProbe(every=0.02).start()
    main0 = time.thread_time()
    cpu0, polls0, w0 = cpu_seconds(), polls(), time.time()
    await asyncio.sleep(length)
    cpu1, polls1, w1 = cpu_seconds(), polls(), time.time()
    main1 = time.thread_time()
    lag = await probe.stop()
    stats = await server_call(a["port"], "/_stats")
    n = polls1 - polls0
    out: dict[str, Any] = {
        "window_s": w1 - w0, "polls": n, "cpu_s": cpu1 - cpu0,
        "polls_per_s": n / (w1 - w0), "cpu_ms_per_poll": (cpu1 - cpu0) / n * 1000 if n else 0,
        "cpu_util": (cpu1 - cpu0) / (w1 - w0), **lag,
        # the event loop's own thread; the rest is executor and aiosqlite threads
        "loop_thread_ms_per_poll": (main1 - main0) / n * 1000 if n else 0,
        "server_requests": stats["requests"],
    }
    if not saturated:
        out["cadence"] = cadence(stats["hits"], interval, a["feeds"], w0, w1)  # type: ignore[arg-type]
    return out


# --------------------------------------------------------------------------- bare loop (child)

async def bare_child(a: dict) -> dict[str, Any]:
    import aiohttp

    from bot.feeds import ACCEPT, USER_AGENT

    urls = feed_urls(a["port"], a["feeds"], a["hosts"])
    interval = a["interval"]
    sem = asyncio.Semaphore(a["concurrency"])
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        connector=aiohttp.TCPConnector(limit=a["concurrency"] + 8))
    etags: dict[str, str] = {}
    count = [0]

    async def follow(url: str) -> None:
        while True:
            started = time.time()
            async with sem:
                headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT,
                           "Accept-Encoding": "gzip, deflate"}
                if (etag := etags.get(url)) is not None:
                    headers["If-None-Match"] = etag
                async with asyncio.timeout(30), session.get(url, headers=headers) as resp:
                    if resp.status == 200:
                        await resp.read()
                        if (new := resp.headers.get("ETag")) is not None:
                            etags[url] = new
                count[0] += 1
            await asyncio.sleep(max(0.0, started + interval - time.time()))

    rss_start = rss_mib()
    t0 = time.time()
    tasks = [asyncio.create_task(follow(u)) for u in urls]
    while count[0] < a["feeds"]:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    first_round = time.time() - t0
    result = await _measure(a, t0, lambda: count[0])
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()
    result.update(first_round_s=first_round, rss_start_mib=rss_start,
                  max_rss_mib=max_rss_mib(), rss_end_mib=rss_mib())
    return result


# --------------------------------------------------------------------------- analysis

def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Two runs of one side as one: CPU and polls added up, the worst of the rest."""
    polls = sum(r["polls"] for r in runs)
    cpu = sum(r["cpu_s"] for r in runs)
    out = dict(max(runs, key=lambda r: r["cadence"]["dev_max"]))  # the worse cadence
    out.update(
        polls=polls, cpu_s=cpu, cpu_ms_per_poll=cpu / polls * 1000 if polls else 0.0,
        polls_per_s=sum(r["polls_per_s"] for r in runs) / len(runs),
        cpu_util=sum(r["cpu_util"] for r in runs) / len(runs),
        loop_thread_ms_per_poll=sum(r["loop_thread_ms_per_poll"] * r["polls"]
                                    for r in runs) / polls if polls else 0.0,
        lag_p99_ms=max(r["lag_p99_ms"] for r in runs),
        lag_max_ms=max(r["lag_max_ms"] for r in runs),
        first_round_s=max(r["first_round_s"] for r in runs),
        max_rss_mib=max(r["max_rss_mib"] for r in runs),
    )
    return out


def cadence(hits: dict[str, list[float]], interval: float, feeds: int, w0: float,
            w1: float) -> dict[str, float]:
    """Gaps between each feed's consecutive requests vs the interval."""
    devs: list[float] = []
    polled = 0
    min_polls = None
    for n in range(feeds):
        times = sorted(t for t in hits.get(str(n), ()) if w0 <= t <= w1)
        if times:
            polled += 1
        min_polls = len(times) if min_polls is None else min(min_polls, len(times))
        devs.extend(abs((b - a) - interval) / interval for a, b in itertools.pairwise(times))
    within = sum(1 for d in devs if d <= 0.10)
    return {"feeds_polled": polled, "min_polls_per_feed": min_polls or 0, "gaps": len(devs),
            "dev_max": max(devs, default=0.0), "dev_p99": percentile(devs, 99),
            "dev_p50": percentile(devs, 50),
            "within_10pct": within / len(devs) if devs else 0.0}


# --------------------------------------------------------------------------- driver

def run(quick: bool = False, churn: float | None = None, feeds: int | None = None,
        interval: float | None = None, destinations: int | None = None) -> dict[str, Any]:
    """The bot and a bare aiohttp loop polling the same feeds, each in a child process."""
    p = dict(QUICK if quick else FULL, destinations=1)
    for key, value in (("change_fraction", churn), ("feeds", feeds), ("interval", interval),
                       ("destinations", destinations)):
        if value is not None:
            p[key] = value
    tmp = Path(tempfile.mkdtemp(prefix="bench-polling-"))
    log_line(f"\n== polling: {p['feeds']} feeds, POLL_INTERVAL={p['interval']}s, "
             f"{p['hosts']} loopback hosts, MAX_CONCURRENT_FETCHES={p['concurrency']}, "
             f"MAX_FETCHES_PER_HOST={p['per_host']}, {p['change_fraction']:.0%} of feeds "
             f"change per interval, "
             f"{'X, Mastodon and Bluesky' if p['destinations'] == 3 else 'X'} configured "
             f"(dry-run posters) (load {load_average()})")
    cmd = [sys.executable, "-m", "bench.loopserver", "--feeds", str(p["feeds"]),
           "--hosts", str(p["hosts"]), "--change-fraction", str(p["change_fraction"]),
           "--change-every", str(p["interval"])]
    results: dict[str, Any] = {"params": p}
    budget = 120 + p["interval"] * (p["cycles"] + 4)
    try:
        with subprocess_server(cmd, "PORT=") as (_, port):
            base = dict(p, port=int(port))
            # Steady state: each alone, in the order bot, bare, bare, bot, so that the
            # machine's drift over the minutes this takes weighs on both alike (run once
            # each, the bare loop's CPU per poll differed by up to 40% between runs minutes
            # apart). Each bot run starts from an empty database.
            runs: dict[str, list[dict[str, Any]]] = {"bot": [], "bare": []}
            for i, role in enumerate(("bot", "bare", "bare", "bot")):
                args = dict(base, role=role)
                if role == "bot":
                    args["db"] = db = str(tmp / f"bot{i}.sqlite3")
                runs[role].append(run_child("bench.polling", args, budget))
            results["bot_runs"], results["bare_runs"] = runs["bot"], runs["bare"]
            results["bot"] = bot = combine(runs["bot"])
            results["bare"] = bare = combine(runs["bare"])
            # saturation: POLL_INTERVAL far below what one process can keep up with
            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE feeds SET next_poll_at = 0")
            sat = dict(base, interval=0.1, saturated=True, window=p["saturation_window"])
            results["bot_saturated"] = bot_sat = run_child(
                "bench.polling", dict(sat, role="bot", db=db), budget)
            results["bare_saturated"] = bare_sat = run_child(
                "bench.polling", dict(sat, role="bare"), budget)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratio = bot["cpu_ms_per_poll"] / bare["cpu_ms_per_poll"]
    # bot, bare, bare, bot: each pair of neighbours, (bot, bare) then (bare, bot)
    pair_ratios = [b["cpu_ms_per_poll"] / a["cpu_ms_per_poll"]
                   for b, a in zip(runs["bot"], runs["bare"], strict=True)]
    sat_ratio = bot_sat["cpu_ms_per_poll"] / bare_sat["cpu_ms_per_poll"]
    c = bot["cadence"]
    results["summary"] = summary = {
        "cpu_per_poll_ratio": ratio, "cpu_per_poll_ratio_pairs": pair_ratios,
        "cpu_per_poll_ratio_saturated": sat_ratio,
        "max_polls_per_s_ratio": bot_sat["polls_per_s"] / bare_sat["polls_per_s"],
        "cadence_dev_max": c["dev_max"], "cadence_dev_p99": c["dev_p99"],
        "peak_rss_mib": bot["max_rss_mib"],
        "target_cpu": ratio <= 1.5, "target_cadence": c["dev_max"] <= 0.10,
        "target_rss": bot["max_rss_mib"] < 150,
    }
    steady = [("bot", bot), ("bare aiohttp", bare)]
    saturated = [("bot", bot_sat), ("bare aiohttp", bare_sat)]
    for name, r in steady:
        cc = r["cadence"]
        log_line(f"  {name:12} steady: {fmt(r['polls_per_s'], 0)} polls/s, "
                 f"{fmt(r['cpu_ms_per_poll'], 3)} CPU ms/poll ({fmt(r['cpu_util'] * 100, 0)}% "
                 f"of a core), loop lag p99 {fmt(r['lag_p99_ms'], 1)} ms max "
                 f"{fmt(r['lag_max_ms'], 1)} ms, first round {fmt(r['first_round_s'], 1)} s, "
                 f"peak RSS {fmt(r['max_rss_mib'], 0)} MiB; event-loop thread "
                 f"{fmt(r['loop_thread_ms_per_poll'], 3)} ms/poll")
        log_line(f"  {'':12} cadence: {cc['feeds_polled']}/{p['feeds']} feeds polled, "
                 f">= {cc['min_polls_per_feed']} polls each, gap deviation p50 "
                 f"{fmt(cc['dev_p50'] * 100, 1)}% p99 {fmt(cc['dev_p99'] * 100, 1)}% max "
                 f"{fmt(cc['dev_max'] * 100, 1)}%, {fmt(cc['within_10pct'] * 100, 2)}% of gaps "
                 "within 10%")
    for name, r in saturated:
        log_line(f"  {name:12} saturated: {fmt(r['polls_per_s'], 0)} polls/s, "
                 f"{fmt(r['cpu_ms_per_poll'], 3)} CPU ms/poll ({fmt(r['cpu_util'] * 100, 0)}% "
                 f"of a core), loop lag p99 {fmt(r['lag_p99_ms'], 1)} ms, peak RSS "
                 f"{fmt(r['max_rss_mib'], 0)} MiB")
    log_line(f"  => CPU/poll bot/bare: steady {fmt(ratio)}x (target <= 1.5x: "
             f"{'met' if summary['target_cpu'] else 'MISSED'}; runs bot-bare-bare-bot, the "
             f"first pair {fmt(pair_ratios[0])}x, the second {fmt(pair_ratios[1])}x), "
             f"saturated {fmt(sat_ratio)}x; "
             f"max polls/s bot/bare {fmt(summary['max_polls_per_s_ratio'])}x; cadence max "
             f"deviation {fmt(c['dev_max'] * 100, 1)}% (target <= 10%: "
             f"{'met' if summary['target_cadence'] else 'MISSED'}); bot peak RSS "
             f"{fmt(bot['max_rss_mib'], 0)} MiB (target < 150: "
             f"{'met' if summary['target_rss'] else 'MISSED'})")
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--quick", action="store_true")
    add_options(ap)
    args = ap.parse_args()
    if args.child:
        a = json.loads(args.child)
        report(asyncio.run(bot_child(a) if a["role"] == "bot" else bare_child(a)))
    else:
        print(json.dumps(run(args.quick, args.churn, args.feeds, args.interval,
                             args.destinations)["summary"], indent=1))


def add_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--churn", type=float, metavar="FRACTION",
                    help="polling: fraction of the feeds with a new article per interval "
                         "(default 0.01; 0: every poll a 304; 1: every poll a new article)")
    ap.add_argument("--feeds", type=int, help="polling: number of feeds (default 10000)")
    ap.add_argument("--interval", type=float, help="polling: POLL_INTERVAL (default 25)")
    ap.add_argument("--destinations", type=int, choices=(1, 3),
                    help="polling: 1 = X configured (the default), 3 = X, Mastodon and "
                         "Bluesky (issue 15), each with a dry-run poster")


if __name__ == "__main__":
    main()
