"""Benchmark 2: parsing every feed of ``../shared/feeds/real``, changed on every poll.

1. **Throughput**, one core, bodies in memory: plain ``feedparser.parse`` (its defaults:
   the baseline), :func:`bot.parse.parse_feed` as it is, and the candidate fast path
   (:mod:`bench.fastxml`: C ElementTree for well-formed UTF-8 RSS/Atom/RDF, feedparser for
   anything else). MB/s over the corpus and milliseconds per feed; the median of several
   rounds.
2. **Parallel**: the same corpus through a ProcessPoolExecutor with 2 workers (wall clock),
   as the bot could use for ``run_in_executor``.
3. **Equality**: the candidate's result must equal ``parse_feed``'s on every corpus file,
   real and adversarial (errors included), or it is not a candidate.
4. **Event-loop lag** while the largest feeds are fetched and parsed by a real
   :class:`bot.worker.Worker` (POLL_INTERVAL=1s, the corpus server answering 200 with the
   whole file every time), for each executor choice: the default thread pool, a
   ProcessPoolExecutor(2), each with and without the fast path. A probe task sleeps 5 ms in
   a loop and records how late it wakes. Each variant runs in its own process.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.common import (
    AS_IN_PRODUCTION,
    ROOT,
    LagProbe,
    cpu_seconds,
    fmt,
    load_average,
    log_line,
    module_main,
    quiet_logging,
    run_child,
    subprocess_server,
)

SHARED = ROOT.parent / "shared" / "feeds"
REAL = SHARED / "real"
ADVERSARIAL = SHARED / "adversarial"

FULL: dict[str, Any] = dict(rounds=5, lag_seconds=12.0, largest=8)
QUICK: dict[str, Any] = dict(rounds=2, lag_seconds=4.0, largest=4)


def corpus() -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(REAL.iterdir())]


def feed_url(name: str) -> str:
    return f"https://example.org/feeds/{name}"


# --------------------------------------------------------------------------- parsers

def plain_feedparser(name: str, body: bytes) -> object:
    import feedparser

    return feedparser.parse(io.BytesIO(body))


def bot_parse(name: str, body: bytes) -> object:
    from bot.errors import FeedParseError
    from bot.parse import parse_feed

    try:
        return parse_feed(body, feed_url(name))
    except FeedParseError as exc:
        return ("error", str(exc))


def use_fast_path(enabled: bool) -> None:
    from bench import fastxml
    from bot import parse

    (fastxml.install if enabled else fastxml.uninstall)(parse)


def time_serial(fn, files: list[tuple[str, bytes]], rounds: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Median wall time of a round over the corpus (one core), and per-file times."""
    totals: list[float] = []
    per_file: dict[str, list[float]] = {n: [] for n, _ in files}
    for _ in range(rounds):
        start = time.perf_counter()
        for name, body in files:
            t = time.perf_counter()
            fn(name, body)
            per_file[name].append(time.perf_counter() - t)
        totals.append(time.perf_counter() - start)
    size = sum(len(b) for _, b in files)
    best = {n: statistics.median(v) for n, v in per_file.items()}
    total = statistics.median(totals)
    return {"seconds": total, "mb_per_s": size / total / 1e6,
            "ms_per_feed": total / len(files) * 1000,
            "per_file_ms": {n: v * 1000 for n, v in best.items()}}


def time_pool(files: list[tuple[str, bytes]], rounds: int, fast: bool) -> dict[str, Any]:
    """Median wall time of a round with every file submitted to a 2-process pool."""
    ctx = get_context("forkserver")
    size = sum(len(b) for _, b in files)
    totals = []
    with ProcessPoolExecutor(2, mp_context=ctx, initializer=use_fast_path,
                             initargs=(fast,)) as pool:
        list(pool.map(bot_parse, *zip(*files[:4], strict=True)))  # warm both workers
        for _ in range(rounds):
            start = time.perf_counter()
            list(pool.map(bot_parse, *zip(*files, strict=True)))
            totals.append(time.perf_counter() - start)
    total = statistics.median(totals)
    return {"seconds": total, "mb_per_s": size / total / 1e6,
            "ms_per_feed": total / len(files) * 1000}


def equality() -> dict[str, Any]:
    """The candidate against parse_feed on every corpus file (errors included)."""
    from bench import fastxml
    from bot.parse import _content_type

    same = fast = total = 0
    different: list[str] = []
    for directory in (REAL, ADVERSARIAL):
        for path in sorted(directory.iterdir()):
            body = path.read_bytes()
            use_fast_path(False)
            a = bot_parse(path.name, body)
            use_fast_path(True)
            b = bot_parse(path.name, body)
            use_fast_path(False)
            total += 1
            same += a == b
            if a != b:
                different.append(f"{directory.name}/{path.name}")
            if fastxml.feedparser_result(body, _content_type(body, None)) is not None:
                fast += 1
    return {"files": total, "identical": same, "on_fast_path": fast, "different": different}


# --------------------------------------------------------------------------- loop lag (child)

async def lag_child(a: dict) -> dict[str, Any]:
    from bot.config import Settings
    from bot.twitter import DryRunClient
    from bot.worker import Worker

    quiet_logging(Path(a["db"]).with_suffix(".log"))
    use_fast_path(a["fast"])
    executor: Executor | None = None
    if a["executor"] == "process":
        executor = ProcessPoolExecutor(2, mp_context=get_context("forkserver"),
                                       initializer=use_fast_path, initargs=(a["fast"],))
    urls = [f"http://127.0.0.1:{a['port']}/c/{name}" for name in a["files"]]
    env = {"FEED_URLS": ",".join(urls), "DATABASE_PATH": a["db"], **AS_IN_PRODUCTION,
           "POLL_INTERVAL": "1", "MAX_FEED_BYTES": "20MiB"}
    worker = Worker(Settings.from_env(env), executor=executor, poster=DryRunClient())
    await worker.start()
    run = asyncio.create_task(worker.run())

    def polls() -> float:
        get = worker.metrics.registry.get_sample_value
        return sum(get("bot_feed_polls_total", {"outcome": o}) or 0.0
                   for o in ("new", "unchanged", "not_modified", "error"))

    while polls() < len(urls):  # the first round baselines every feed  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    probe = LagProbe(every=0.005).start()
    cpu0, n0, t0 = cpu_seconds(), polls(), time.time()
    await asyncio.sleep(a["seconds"])
    cpu1, n1, t1 = cpu_seconds(), polls(), time.time()
    lag = await probe.stop()
    worker.stop()
    await run
    await worker.close()
    if executor is not None:
        executor.shutdown()
    mb = sum((REAL / n).stat().st_size for n in a["files"]) / len(a["files"]) / 1e6
    return {**lag, "polls_per_s": (n1 - n0) / (t1 - t0), "mb_per_s": (n1 - n0) * mb / (t1 - t0),
            "loop_process_cpu_util": (cpu1 - cpu0) / (t1 - t0),
            "errors": worker.metrics.registry.get_sample_value(
                "bot_feed_polls_total", {"outcome": "error"})}


# --------------------------------------------------------------------------- driver

def run(quick: bool = False) -> dict[str, Any]:
    p = QUICK if quick else FULL
    files = corpus()
    size = sum(len(b) for _, b in files)
    log_line(f"\n== parsing: {len(files)} files of shared/feeds/real, {size / 1e6:.2f} MB, "
             f"{p['rounds']} rounds (load {load_average()})")
    out: dict[str, Any] = {"files": len(files), "bytes": size}
    out["feedparser"] = fp = time_serial(plain_feedparser, files, p["rounds"])
    use_fast_path(False)
    out["bot"] = bot = time_serial(bot_parse, files, p["rounds"])
    use_fast_path(True)
    out["bot_fast"] = fast = time_serial(bot_parse, files, p["rounds"])
    use_fast_path(False)
    out["bot_pool2"] = pool = time_pool(files, p["rounds"], fast=False)
    out["bot_fast_pool2"] = fpool = time_pool(files, p["rounds"], fast=True)
    out["equality"] = eq = equality()
    base = fp["mb_per_s"]
    rows = [("plain feedparser.parse", fp), ("bot, feedparser only", bot),
            ("bot (default: fast path)", fast), ("bot, feedparser only, 2 procs", pool),
            ("bot, PARSE_PROCESSES=2", fpool)]
    for label, r in rows:
        log_line(f"  {label:30} {fmt(r['mb_per_s'])} MB/s  {fmt(r['ms_per_feed'])} ms/feed  "
                 f"{fmt(r['mb_per_s'] / base)}x feedparser")
    largest = sorted(files, key=lambda f: -len(f[1]))[:5]
    for name, body in largest:
        log_line(f"    {name:26} {len(body) / 1e3:6.0f} kB: feedparser "
                 f"{fmt(fp['per_file_ms'][name], 1)} ms, bot {fmt(bot['per_file_ms'][name], 1)}"
                 f" ms, bot + fast path {fmt(fast['per_file_ms'][name], 1)} ms")
    log_line(f"  candidate = parse_feed on {eq['identical']}/{eq['files']} corpus files "
             f"(real + adversarial), {eq['on_fast_path']} of them on the fast path"
             + (f"; DIFFERENT: {eq['different']}" if eq["different"] else ""))

    # event-loop lag while the largest feeds are polled and parsed by a Worker
    names = [n for n, _ in sorted(files, key=lambda f: -len(f[1]))[:p["largest"]]]
    tmp = Path(tempfile.mkdtemp(prefix="bench-parsing-"))
    cmd = [sys.executable, "-m", "bench.loopserver", "--feeds", "1", "--change-fraction", "0",
           "--hosts", "1", "--corpus", str(REAL)]
    lag: dict[str, Any] = {}
    try:
        with subprocess_server(cmd, "PORT=") as (_, port):
            for executor in ("thread", "process"):
                for fast_path in (False, True):
                    label = f"{executor}{'+fast' if fast_path else ''}"
                    lag[label] = run_child("bench.parsing", {
                        "port": int(port), "files": names, "executor": executor,
                        "fast": fast_path, "seconds": p["lag_seconds"],
                        "db": str(tmp / f"{label}.sqlite3")}, 120 + p["lag_seconds"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["loop_lag"] = lag
    log_line(f"  event-loop lag while a Worker polls the {len(names)} largest feeds every "
             "second (200, whole body, parsed each time):")
    for label, r in lag.items():
        log_line(f"    executor={label:13} lag p50 {fmt(r['lag_p50_ms'], 1)} ms, p99 "
                 f"{fmt(r['lag_p99_ms'], 1)} ms, max {fmt(r['lag_max_ms'], 1)} ms; "
                 f"{fmt(r['polls_per_s'], 1)} polls/s ({fmt(r['mb_per_s'], 1)} MB/s), "
                 f"main process CPU {fmt(r['loop_process_cpu_util'] * 100, 0)}%")
    best = max(("bot", "bot_fast", "bot_pool2", "bot_fast_pool2"),
               key=lambda k: out[k]["mb_per_s"])  # type: ignore[index]
    out["summary"] = {
        "speedup_as_is": bot["mb_per_s"] / base, "speedup_fast": fast["mb_per_s"] / base,
        "speedup_pool2": pool["mb_per_s"] / base, "speedup_fast_pool2": fpool["mb_per_s"] / base,
        "best": best, "lag_p99_ms": {k: v["lag_p99_ms"] for k, v in lag.items()},
        "candidate_identical": eq["identical"] == eq["files"],
    }
    default, procs = fast["mb_per_s"] / base, fpool["mb_per_s"] / base
    log_line(f"  => default (fast path, threads) {fmt(default)}x feedparser, "
             f"PARSE_PROCESSES=2 {fmt(procs)}x (target >= 5x: "
             f"{'met' if max(default, procs) >= 5 else 'MISSED'}); feedparser only "
             f"{fmt(bot['mb_per_s'] / base)}x; loop lag p99 default "
             f"{fmt(lag['thread+fast']['lag_p99_ms'], 1)} ms, PARSE_PROCESSES=2 "
             f"{fmt(lag['process+fast']['lag_p99_ms'], 1)} ms (target < 50 ms)")
    return out


def main() -> None:
    module_main(lag_child, run)


if __name__ == "__main__":
    main()
