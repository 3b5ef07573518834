"""``python -m bench [--only polling|parsing|burst|history|destinations] [--quick]
[--json PATH] [--churn FRACTION] [--feeds N] [--interval SECONDS] [--destinations 1|3]
[--delays x=S,mastodon=S,bluesky=S]``

Runs the benchmarks of issues 6 and 15 one after the other (never part of ``make test``), prints
each one's figures as it goes, and optionally writes every figure as JSON. ``--quick`` uses
smaller sizes (about two minutes in all); the full run takes about ten. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

from bench import burst, destinations, history, parsing, polling

BENCHMARKS = {"polling": polling, "parsing": parsing, "burst": burst, "history": history,
              "destinations": destinations}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=list(BENCHMARKS), action="append",
                    help="run only this benchmark (may be repeated)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about 2 minutes)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to PATH as JSON")
    polling.add_options(ap)
    destinations.add_options(ap)
    args = ap.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    print(f"bench: {', '.join(names)}{' (quick)' if args.quick else ''} on Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    started = time.time()
    results: dict[str, Any] = {}
    for name in names:
        t = time.time()
        if name == "polling":
            results[name] = polling.run(args.quick, args.churn, args.feeds, args.interval,
                                        args.destinations)
        elif name == "destinations":
            results[name] = destinations.run(args.quick, args.delays)
        else:
            results[name] = BENCHMARKS[name].run(quick=args.quick)
        print(f"  ({name}: {time.time() - t:.0f} s)", flush=True)
    print(f"\nbench: done in {time.time() - started:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
