"""Helpers that compare bot.parse's fast XML path (bot.fastxml) with feedparser, shared by
tests/test_fastpaths.py, tests/test_feedparser_compat.py and ``python -m bench.fastxml_check``.

* :func:`parsed` / :func:`both_paths`: ``parse_feed`` with the fast path off and on (errors
  as values, so that two failures compare too).
* :func:`mutate`: a corpus feed changed where feedparser's rules depend on order and repeats
  (items cut to six, children dropped, shuffled, duplicated, given odd text or attributes or
  another kind of title: media:title, dc:title, media:group), which is where a
  re-implementation would go wrong; and given the elements an entry's image comes from
  (media:thumbnail, media:content, media:group, enclosure, itunes:image, <img> in HTML,
  xml:base), in every order, relative and odd URLs included. The comparison is of the whole
  :class:`~bot.models.ParsedFeed`, so of every Entry field: ``image`` too.
* :func:`feedparser_difference`: how the installed feedparser differs from the one the fast
  path was checked against (bot.feedparser_compat), or None.
"""

from __future__ import annotations

import copy
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import feedparser

from bot import feedparser_compat as compat
from bot import parse
from bot.errors import FeedParseError

TEXTS = ["", "  ", "a &amp; b", "<b>x</b>", "Ã©t", "\x93q\x94", "http://x.org/a?b=1&c=2",
         "2020/1/2 3:04", "Mon, 06 Sep 2021 10:00:00 GMT", "mail@x.org (Jo)", "/rel/x"]
ATTRS = ["type", "rel", "isPermaLink", "href", "domain", "term"]
VALUES = ["html", "text", "false", "true", "alternate", "related", "", "/rel/x"]
MEDIA = "http://search.yahoo.com/mrss/"
DC = "http://purl.org/dc/elements/1.1/"
ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
ATOM = "http://www.w3.org/2005/Atom"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
IMAGE_URLS = ["https://img.example.org/a.jpg", "/rel/b.png", "c.gif?x=1&y=2", "", "  ",
              "data:image/png;base64,AAAA", "javascript:alert(1)", "//cdn.example.org/d.webp",
              "https://img.example.org/\u65e5\u672c.png", "Ã©.jpg",
              "https://img.example.org/" + "x" * 2100]
IMAGE_TYPES = ["image/jpeg", "IMAGE/PNG", "audio/mpeg", "", "image"]
BASES = ["https://base.example.org/dir/", "/root/", "sub/", "javascript:x", ""]


@contextmanager
def fast_path(enabled: bool) -> Iterator[None]:
    """bot.parse with its fast XML path on or off, restored afterwards."""
    saved = parse.FAST_PATH
    parse.FAST_PATH = enabled
    try:
        yield
    finally:
        parse.FAST_PATH = saved


def parsed(body: bytes, url: str, *, fast: bool) -> object:
    """``parse_feed``'s answer with the fast path on or off; its error as a value."""
    with fast_path(fast):
        try:
            return parse.parse_feed(body, url)
        except FeedParseError as exc:
            return ("error", str(exc))


def both_paths(body: bytes, url: str) -> tuple[object, object]:
    """(feedparser only, fast path) answers of ``parse_feed``."""
    return parsed(body, url, fast=False), parsed(body, url, fast=True)


def reads_fast(body: bytes) -> bool:
    """Whether bot.fastxml reads ``body`` (as bot.parse would show it, no Content-Type)."""
    from bot import fastxml

    return fastxml.parse(body, parse._content_type(body, None)) is not None


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


def image_element(rng: random.Random) -> ET.Element:
    """One of the elements an entry's image comes from, with odd attributes or text."""
    kind = rng.choice(["thumbnail", "thumbnail-text", "content", "group", "enclosure",
                       "atom-enclosure", "itunes", "itunes-link", "img"])
    url = rng.choice(IMAGE_URLS)
    if kind == "thumbnail":
        el = ET.Element(f"{{{MEDIA}}}thumbnail", url=url)
    elif kind == "thumbnail-text":
        el = ET.Element(f"{{{MEDIA}}}thumbnail")
        el.text = f" {url} "
    elif kind in ("content", "group"):
        el = ET.Element(f"{{{MEDIA}}}content", url=url)
        if rng.random() < 0.6:
            el.set("medium", rng.choice(["image", "Image", "video", ""]))
        if rng.random() < 0.6:
            el.set("type", rng.choice(IMAGE_TYPES))
        if rng.random() < 0.3:
            el.append(ET.Element(f"{{{MEDIA}}}thumbnail", url=rng.choice(IMAGE_URLS)))
        if kind == "group":
            group = ET.Element(f"{{{MEDIA}}}group")
            group.append(el)
            if rng.random() < 0.5:
                group.append(_title_element(rng))
            el = group
    elif kind == "enclosure":
        el = ET.Element("enclosure", url=url, type=rng.choice(IMAGE_TYPES), length="0")
    elif kind == "atom-enclosure":
        el = ET.Element(f"{{{ATOM}}}link", rel="enclosure", href=url,
                        type=rng.choice(IMAGE_TYPES))
    elif kind in ("itunes", "itunes-link"):
        el = ET.Element(f"{{{ITUNES}}}{'image' if kind == 'itunes' else 'link'}",
                        {rng.choice(["href", "url"]): url})
    else:  # escaped HTML with pictures, in a content:encoded
        el = ET.Element("{http://purl.org/rss/1.0/modules/content/}encoded")
        el.text = rng.choice(["", "<p>x</p>", "<!-- <img src='/c.png'> -->"]) + \
            f"<img width=1 src='/pixel.gif'><IMG alt='a' SRC=\"{url}\">"
    if rng.random() < 0.15:
        el.set(XML_BASE, rng.choice(BASES))
    return el


def mutate(body: bytes, rng: random.Random) -> bytes:
    """A changed copy of a feed, in the feed's own encoding (see the module docstring)."""
    for prefix, uri in ((b"media", MEDIA.encode()), (b"itunes", ITUNES.encode()),
                        *re.findall(rb'xmlns:([\w.-]+)="([^"]+)"', body)):
        try:
            ET.register_namespace(prefix.decode(), uri.decode())
        except ValueError:
            pass
    # a document in another encoding is mutated as UTF-8 and written back in its own
    result: dict[str, Any] = {}
    body = compat.convert_to_utf8({"content-type": "application/xml"}, body, result)
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
        if rng.random() < 0.4:  # where the entry's image comes from, anywhere
            for _ in range(rng.randint(1, 3)):
                item.insert(rng.randint(0, len(item)), image_element(rng))
            if rng.random() < 0.2:
                item.set(XML_BASE, rng.choice(BASES))
    return ET.tostring(root, encoding=encoding, xml_declaration=True)


RECHECK = ("bot.fastxml mirrors feedparser's handlers as they were in the feedparser recorded "
           "in bot/feedparser_compat.py. Re-check the fast path against the installed one: "
           "run `python -m bench.fastxml_check --mutations 3000` (it must report no "
           "difference), review bot/fastxml.py's handler sets (_HARMLESS_HANDLERS, "
           "_CONTENT_HANDLERS, _FEED_DANGER, _ALIASED, _IMAGES) against the changed "
           "handlers, then paste the record the check prints into bot/feedparser_compat.py.")


def feedparser_difference() -> str | None:
    """What differs between the installed feedparser and the recorded one, or None."""
    installed = compat.handler_names()
    added = sorted(installed - compat.CHECKED_HANDLERS)
    removed = sorted(compat.CHECKED_HANDLERS - installed)
    changes = []
    if added:
        changes.append(f"handlers added: {', '.join(added)}")
    if removed:
        changes.append(f"handlers removed: {', '.join(removed)}")
    if compat.installed_source_sha256() != compat.CHECKED_SOURCE_SHA256:
        changes.append("the code of its handlers (or of pop, unknown_starttag, the namespace "
                       "map, FeedParserDict ...) changed")
    if not changes:
        return None
    return (f"The installed feedparser {feedparser.__version__} differs from the one the fast "
            f"path was checked against ({compat.CHECKED_VERSION}): {'; '.join(changes)}.")
