"""Benchmark 3: a burst of new articles, posted through a slow X.

In a child process per run: a loopback blog server (:class:`tests.fakes.feed_server.FeedServer`)
with one busy blog and ``others`` quiet ones, the fake X (:class:`tests.fakes.fake_x.FakeX`,
OAuth checked) answering each post after ``delay`` = 1 s, and a real
:class:`bot.worker.Worker` polling every feed every ``interval`` seconds. After the first
round (the baseline), ``articles`` new articles appear at once on the busy blog. We measure:

* the drain time: from publication to the last tweet on X, against the ideal
  ``articles / MAX_CONCURRENT_POSTS * delay`` (ratio 1.0 is perfect);
* the cadence of the quiet feeds while the burst drains (gaps between their requests vs
  ``interval``), and the event-loop lag;
* RSS before, at peak during, and after the burst;
* SQLite write transactions, counted with a trace callback on the bot's connection: a
  ``BEGIN`` ... ``COMMIT`` is one, and so is each write in autocommit mode; by statement.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    LagProbe,
    burst_blogs,
    fmt,
    load_average,
    log_line,
    module_main,
    percentile,
    quiet_logging,
    rss_mib,
    run_child,
)

FULL: dict[str, Any] = dict(articles=1000, others=50, interval=2.0, concurrency=(4, 16))
QUICK: dict[str, Any] = dict(articles=48, others=20, interval=2.0, concurrency=(4, 16))
KEYS = {"TWITTER_API_KEY": "ck", "TWITTER_API_SECRET": "cs",
        "TWITTER_ACCESS_TOKEN": "at", "TWITTER_ACCESS_TOKEN_SECRET": "ats"}


class WriteCounter:
    """Counts write transactions from the statements SQLite runs (trace callback)."""

    _WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.I)

    def __init__(self) -> None:
        self.on = False
        self.in_txn = False
        self.transactions = 0
        self.kinds: Counter[str] = Counter()
        self._txn_kinds: list[str] = []

    def __call__(self, sql: str) -> None:  # runs in aiosqlite's thread
        if not self.on:
            return
        head = sql.lstrip()[:60].upper()
        if head.startswith("BEGIN"):
            self.in_txn, self._txn_kinds = True, []
        elif head.startswith(("COMMIT", "END")):
            if self.in_txn:
                self.transactions += 1
                self.kinds["transaction: " + "+".join(sorted(set(self._txn_kinds)))] += 1
            self.in_txn = False
        elif head.startswith("ROLLBACK"):
            self.in_txn = False
        elif self._WRITE.match(sql):
            kind = _kind(sql)
            if self.in_txn:
                self._txn_kinds.append(kind)
            else:
                self.transactions += 1
                self.kinds[kind] += 1


def _kind(sql: str) -> str:
    words = " ".join(sql.split()[:6])
    # a quoted value names the kind (state = 'sent'); a number would make each write its own
    m = re.match(r"(UPDATE \w+ SET \w+(?: = '\w*')?|INSERT (OR \w+ )?INTO \w+|DELETE FROM \w+)",
                 words, re.I)
    return m.group(1) if m else words


async def burst_child(a: dict) -> dict[str, Any]:
    from bot.config import Settings
    from bot.worker import Worker
    from tests.fakes.fake_x import FakeX
    from tests.fakes.feed_server import FeedServer

    quiet_logging(Path(a["db"]).with_suffix(".log"))
    server = FeedServer()
    await server.start()
    fake = FakeX(delay=a["delay"])
    await fake.start()
    busy, quiet = burst_blogs(server, a["articles"], a["others"])
    env = {"FEED_URLS": ",".join([busy.url] + [b.url for b in quiet]), "DATABASE_PATH": a["db"],
           "POLL_INTERVAL": str(a["interval"]), "TWITTER_API_BASE_URL": fake.base_url,
           "MAX_CONCURRENT_POSTS": str(a["concurrency"]), "MAX_FETCHES_PER_HOST": "64",
           "MAX_CONCURRENT_FETCHES": "64", **KEYS}
    worker = Worker(Settings.from_env(env))
    await worker.start()
    writes = WriteCounter()
    assert worker.store is not None
    await worker.store.db.set_trace_callback(writes)
    run = asyncio.create_task(worker.run())
    while not all(f.baselined for f in worker.feeds.values()):  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    await asyncio.sleep(a["interval"])  # one quiet round: steady state
    rss_before = rss_mib()
    peak = rss_before
    probe = LagProbe(every=0.01).start()
    writes.on = True
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=a["articles"])
    t0 = time.time()
    for k in range(a["articles"]):
        busy.publish(f"Burst article {k}", published=base + timedelta(seconds=k),
                     summary=f"Article {k} of the burst.")
    found_at = None
    deadline = t0 + a["articles"] / a["concurrency"] * a["delay"] * 3 + 60
    while len(fake.ledger) < a["articles"] + 0 and time.time() < deadline:
        await asyncio.sleep(0.05)
        peak = max(peak, rss_mib())
        found = worker.metrics.registry.get_sample_value("bot_articles_found_total") or 0
        if found_at is None and found >= a["articles"]:
            found_at = time.time()
    t1 = time.time()
    writes.on = False
    lag = await probe.stop()
    await asyncio.sleep(0.5)
    rss_after = rss_mib()
    worker.stop()
    await run
    await worker.close()
    posted = len(fake.ledger)
    first = min((t.at for t in fake.ledger), default=t1)
    gaps: list[float] = []
    for blog in quiet:
        times = [t for t in server.hit_times[blog.path] if t0 - 0 <= _wall(t) <= t1]
        gaps.extend(abs((b - a_) - a["interval"]) / a["interval"]
                    for a_, b in itertools.pairwise(times))
    await fake.close()
    await server.close()
    ideal = a["articles"] / a["concurrency"] * a["delay"]
    return {
        "posted": posted, "drain_s": t1 - t0, "ideal_s": ideal, "ratio": (t1 - t0) / ideal,
        # from the poll that found them (the wait for that poll is up to POLL_INTERVAL)
        "posting_s": t1 - (found_at or t0), "posting_ratio": (t1 - (found_at or t0)) / ideal,
        "detect_s": (found_at or t1) - t0, "first_tweet_s": first - t0,
        "max_in_flight_at_x": fake.max_in_flight,
        "cadence_dev_max": max(gaps, default=0.0), "cadence_dev_p99": percentile(gaps, 99),
        "quiet_polls": len(gaps) + len(quiet), **lag,
        "rss_before_mib": rss_before, "rss_peak_mib": peak, "rss_after_mib": rss_after,
        "write_transactions": writes.transactions,
        "writes_per_post": writes.transactions / max(1, posted),
        "write_kinds": dict(writes.kinds.most_common()),
    }


_MONO_OFFSET = time.time() - time.monotonic()


def _wall(mono: float) -> float:
    """FeedServer records time.monotonic(); compare with wall-clock marks."""
    return mono + _MONO_OFFSET


def run(quick: bool = False) -> dict[str, Any]:
    p = QUICK if quick else FULL
    log_line(f"\n== burst: {p['articles']} new articles at once on one blog, "
             f"{p['others']} other feeds polled every {p['interval']}s, fake X answering "
             f"after 1 s (load {load_average()})")
    out: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    try:
        for c in p["concurrency"]:
            args = dict(articles=p["articles"], others=p["others"], interval=p["interval"],
                        concurrency=c, delay=1.0, db=str(tmp / f"burst{c}.sqlite3"))
            budget = p["articles"] / c * 3 + 180
            out[f"posts{c}"] = r = run_child("bench.burst", args, budget)
            log_line(f"  MAX_CONCURRENT_POSTS={c:<3} drained {r['posted']}/{p['articles']} in "
                     f"{fmt(r['drain_s'], 1)} s from publication; posting took "
                     f"{fmt(r['posting_s'], 1)} s (ideal {fmt(r['ideal_s'], 1)} s: "
                     f"{fmt(r['posting_ratio'])}x); found in {fmt(r['detect_s'], 1)} s, "
                     f"first tweet after {fmt(r['first_tweet_s'], 1)} s, at most "
                     f"{r['max_in_flight_at_x']} "
                     "in flight at X")
            log_line(f"  {'':24}other feeds' cadence: max deviation "
                     f"{fmt(r['cadence_dev_max'] * 100, 1)}% p99 "
                     f"{fmt(r['cadence_dev_p99'] * 100, 1)}%; loop lag p99 "
                     f"{fmt(r['lag_p99_ms'], 1)} ms max {fmt(r['lag_max_ms'], 1)} ms; RSS "
                     f"{fmt(r['rss_before_mib'], 0)} -> peak {fmt(r['rss_peak_mib'], 0)} -> "
                     f"{fmt(r['rss_after_mib'], 0)} MiB")
            log_line(f"  {'':24}SQLite write transactions: {r['write_transactions']} "
                     f"({fmt(r['writes_per_post'], 2)} per post): {r['write_kinds']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["summary"] = {f"posting_ratio_{c}": out[f"posts{c}"]["posting_ratio"]  # type: ignore[index]
                      for c in p["concurrency"]}
    return out


def main() -> None:
    module_main(burst_child, run)


if __name__ == "__main__":
    main()
