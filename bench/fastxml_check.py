"""Is the fast path (bot/fastxml.py) exactly ``parse_feed`` with feedparser alone? Checked on
every corpus file and on mutated copies of the corpus feeds it reads (items cut to six,
children dropped, shuffled, duplicated, given odd text or attributes or another kind of
title (media:title, dc:title, media:group): the order- and repeat-sensitive rules of
feedparser are where a re-implementation would go wrong; see tests/feedcompare.py).

    python -m bench.fastxml_check [--mutations 1000] [--seed 1]

Prints each difference and exits 1 if there is any. Then says whether the installed
feedparser is the one recorded in bot/feedparser_compat.py (the one the fast path was
checked against) and, if it is not, prints the record to paste there once this check passes
and the handler sets in bot/fastxml.py have been reviewed. Not part of ``make bench``;
tests/test_fastpaths.py runs the same comparison on fewer mutations.
"""

from __future__ import annotations

import argparse
import random
import sys

from bench.parsing import ADVERSARIAL, REAL, feed_url
from bot import feedparser_compat
from tests.feedcompare import both_paths, feedparser_difference, mutate, reads_fast


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mutations", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    differences = 0
    readable: list[tuple[str, bytes]] = []
    files = 0
    for directory in (REAL, ADVERSARIAL):
        for path in sorted(directory.iterdir()):
            body = path.read_bytes()
            files += 1
            a, b = both_paths(body, feed_url(path.name))
            if a != b:
                differences += 1
                print(f"DIFFERENT {directory.name}/{path.name}")
            if reads_fast(body):
                readable.append((path.name, body))
    print(f"{files} corpus files: {files - differences} identical, {len(readable)} on the "
          "fast path")
    fast = same = 0
    for i in range(args.mutations):
        name, body = rng.choice(readable)
        mutated = mutate(body, rng)
        a, b = both_paths(mutated, feed_url(name))
        fast += reads_fast(mutated)
        if a == b:
            same += 1
        else:
            differences += 1
            print(f"DIFFERENT mutation {i} of {name}")
    print(f"{args.mutations} mutated documents: {same} identical, {fast} on the fast path")
    changed = feedparser_difference()
    if changed is None:
        print(f"feedparser {feedparser_compat.CHECKED_VERSION}: the one recorded in "
              "bot/feedparser_compat.py")
    else:
        print(f"{changed}\nOnce this check reports no difference and bot/fastxml.py's handler "
              "sets have been reviewed, record it in bot/feedparser_compat.py:\n\n"
              f"{feedparser_compat.record()}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
