"""Helpers shared by the benchmarks: CPU and memory readings, a loop-lag probe, percentiles,
child processes that report one JSON line, and logging set up like production."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "BENCH_RESULT "


def cpu_seconds() -> float:
    """CPU time of this process, every thread (user + system)."""
    return time.process_time()


def max_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """Current resident set size, MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024**2


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


@dataclass
class LagProbe:
    """Measures how late the event loop wakes from a short sleep (its lag)."""

    every: float = 0.01
    samples: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> LagProbe:
        self._task = asyncio.create_task(self._run(), name="bench-lag-probe")
        return self

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(self.every)
            self.samples.append(max(0.0, loop.time() - t - self.every))

    async def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.summary()

    def summary(self) -> dict[str, float]:
        s = self.samples
        return {"lag_p50_ms": percentile(s, 50) * 1000, "lag_p99_ms": percentile(s, 99) * 1000,
                "lag_max_ms": max(s, default=0.0) * 1000, "lag_samples": len(s)}


# The bot as it runs in production (not DRY_RUN, which logs every poll at INFO for someone
# watching a terminal), posting to nowhere: benchmarks pass `poster=DryRunClient()`.
AS_IN_PRODUCTION = {"TWITTER_API_KEY": "k", "TWITTER_API_SECRET": "s",
                    "TWITTER_ACCESS_TOKEN": "t", "TWITTER_ACCESS_TOKEN_SECRET": "ts"}


def quiet_logging(path: Path) -> None:
    """Log like production (INFO, the bot's text format), into a file instead of stderr."""
    from bot.logs import configure

    configure("INFO", "text", stream=open(path, "a", encoding="utf-8"))


def report(result: dict[str, Any]) -> None:
    """A child process's answer to its parent: one JSON line on stdout."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_child(module: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run ``python -m module --child JSON`` and return the JSON it reports."""
    cmd = [sys.executable, "-m", module, "--child", json.dumps(args)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise RuntimeError(f"{module} child failed (exit {proc.returncode}):\n"
                       f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


@contextlib.contextmanager
def subprocess_server(cmd: list[str], ready_prefix: str) -> Iterator[tuple[subprocess.Popen[str],
                                                                          str]]:
    """Start a server process, wait for its ``PREFIX=value`` line, stop it (SIGTERM) after."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith(ready_prefix):
            raise RuntimeError(f"server did not start: {line!r}")
        yield proc, line.strip()[len(ready_prefix):]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def log_line(text: str) -> None:
    print(text, flush=True)


logging.getLogger("aiosqlite").setLevel(logging.WARNING)


def module_main(child: Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]],
                run: Callable[[bool], dict[str, Any]]) -> None:
    """``python -m bench.X``: ``--child JSON`` is one measured child process (the parent
    starts it), otherwise the benchmark alone, printing its summary."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.child:
        report(asyncio.run(child(json.loads(args.child))))
    else:
        print(json.dumps(run(args.quick)["summary"], indent=1))


def burst_blogs(server: Any, articles: int, others: int) -> tuple[Any, list[Any]]:
    """The burst benches' blogs on a started ``tests.fakes.feed_server.FeedServer``: a busy
    one, with room for ``articles`` more, and ``others`` quiet ones of one post each."""
    busy = server.add_blog("/busy.xml", "Busy blog")
    busy.max_items = articles + 10
    busy.publish("Before the burst")
    quiet = [server.add_blog(f"/quiet/{i}.xml", f"Quiet blog {i}") for i in range(others)]
    for blog in quiet:
        blog.publish("Only post")
    return busy, quiet
