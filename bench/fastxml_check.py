"""Is the fast path (bench/fastxml.py) exactly ``parse_feed``? Checked on every corpus file and
on mutated copies of the corpus feeds it reads (items cut to six, children dropped, shuffled,
duplicated, given odd text or attributes or another kind of title (media:title, dc:title,
media:group): the order- and repeat-sensitive rules of
feedparser are where a re-implementation would go wrong).

    python -m bench.fastxml_check [--mutations 1000] [--seed 1]

Prints each difference and exits 1 if there is any. Not part of ``make bench``: a
correctness check for the proposal, to become a test in tests/ if bot/ adopts it.
"""

from __future__ import annotations

import argparse
import copy
import random
import re
import sys
import xml.etree.ElementTree as ET
from typing import Any

from feedparser.encodings import convert_to_utf8

from bench import fastxml
from bench.parsing import ADVERSARIAL, REAL, feed_url
from bot import parse
from bot.errors import FeedParseError

TEXTS = ["", "  ", "a &amp; b", "<b>x</b>", "Ã©t", "\x93q\x94", "http://x.org/a?b=1&c=2",
         "2020/1/2 3:04", "Mon, 06 Sep 2021 10:00:00 GMT", "mail@x.org (Jo)", "/rel/x"]
ATTRS = ["type", "rel", "isPermaLink", "href", "domain", "term"]
VALUES = ["html", "text", "false", "true", "alternate", "related", "", "/rel/x"]


def both(body: bytes, url: str) -> tuple[Any, Any]:
    """parse_feed without and with the fast path (errors as values)."""
    out: list[Any] = []
    for fast in (False, True):
        (fastxml.install if fast else fastxml.uninstall)(parse)
        try:
            out.append(parse.parse_feed(body, url))
        except FeedParseError as exc:
            out.append(("error", str(exc)))
    fastxml.uninstall(parse)
    return out[0], out[1]


MEDIA = "http://search.yahoo.com/mrss/"
DC = "http://purl.org/dc/elements/1.1/"


def _title_element(rng: random.Random) -> ET.Element:
    """A media:title, dc:title or media:group holding a media:title, with odd text."""
    kind = rng.choice(["media", "dc", "group"])
    title = ET.Element(f"{{{DC}}}title" if kind == "dc" else f"{{{MEDIA}}}title")
    title.text = rng.choice(TEXTS)
    if rng.random() < 0.3:
        title.set("type", rng.choice(["html", "text", "plain"]))
    if kind != "group":
        return title
    group = ET.Element(f"{{{MEDIA}}}group")
    group.append(title)
    return group


def mutate(body: bytes, rng: random.Random) -> bytes:
    for prefix, uri in re.findall(rb'xmlns:([\w.-]+)="([^"]+)"', body):
        try:
            ET.register_namespace(prefix.decode(), uri.decode())
        except ValueError:
            pass
    # a document in another encoding is mutated as UTF-8 and written back in its own
    result: dict[str, Any] = {}
    body = convert_to_utf8({"content-type": "application/xml"}, body, result)
    encoding = result["encoding"]
    root = ET.fromstring(body)
    parents = {c: p for p in root.iter() for c in p}
    items = [el for el in root.iter() if el.tag.split("}")[-1] in ("item", "entry")]
    for extra in items[6:]:
        parents[extra].remove(extra)
    for item in items[:6]:
        kids = list(item)
        op = rng.random()
        if op < 0.3 and kids:
            item.remove(rng.choice(kids))
        elif op < 0.5:
            rng.shuffle(kids)
            for k in list(item):
                item.remove(k)
            item.extend(kids)
        elif op < 0.7 and kids:
            item.append(copy.deepcopy(rng.choice(kids)))
        elif op < 0.8 and kids:
            rng.choice(kids).text = rng.choice(TEXTS)
        elif op < 0.9 and kids:
            rng.choice(kids).set(rng.choice(ATTRS), rng.choice(VALUES))
        elif op < 0.95:  # a title of another kind, anywhere: feedparser's fallback titles
            item.insert(rng.randint(0, len(kids)), _title_element(rng))
    return ET.tostring(root, encoding=encoding, xml_declaration=True)


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
            a, b = both(body, feed_url(path.name))
            if a != b:
                differences += 1
                print(f"DIFFERENT {directory.name}/{path.name}")
            if fastxml.parse(body, parse._content_type(body, None)) is not None:
                readable.append((path.name, body))
    print(f"{files} corpus files: {files - differences} identical, {len(readable)} on the "
          "fast path")
    fast = same = 0
    for i in range(args.mutations):
        name, body = rng.choice(readable)
        mutated = mutate(body, rng)
        a, b = both(mutated, feed_url(name))
        fast += fastxml.parse(mutated, parse._content_type(mutated, None)) is not None
        if a == b:
            same += 1
        else:
            differences += 1
            print(f"DIFFERENT mutation {i} of {name}")
    print(f"{args.mutations} mutated documents: {same} identical, {fast} on the fast path")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
