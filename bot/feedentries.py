"""Entries as every feed reader builds them (XML, JSON Feed, RSS-in-JSON): one job, the
:class:`Entry` values of one parse and their ids.

* **Entry.id** is the id/guid as written, else the link, else ``sha256:`` of title, date and
  the start of the text. Ids are unique within one result: a repeated id gets ``#`` plus 12
  hex digits of that hash, and an entry that repeats an earlier one exactly (same id, same
  content) is dropped. Entries are numbered in document order.
* An entry that cannot be read becomes an Entry with an ``error`` instead of losing the feed.
* Links: absolute http(s) only, normalised (:func:`http_url`).
* Images (a link card's picture): the same, resolved against the entry's base first, and at
  most :data:`IMAGE_MAX` characters (:func:`image_url`).
* The small readers of raw values shared by the formats (:func:`string`, :func:`as_list`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urljoin

from bot.htmltext import plain, untitled
from bot.links import normalise_link
from bot.models import Entry

__all__ = ["IMAGE_MAX", "SUMMARY_MAX", "as_list", "build_entry", "http_url", "image_url",
           "read_each", "string", "unique_entries"]

T = TypeVar("T")

SUMMARY_MAX = 1000  # characters kept of a title or summary
IMAGE_MAX = 2048  # characters of an image URL; a longer one is no image at all
# an http(s) URL that a join leaves as it is (no ";" params, no "\\", no space or control)
_ABSOLUTE_HTTP = re.compile(r"https?://[a-z0-9][^;\\\x00-\x20\x7f]*", re.IGNORECASE)


def build_entry(raw_id: object, link: str | None, title: str, summary: str, author: str,
                tags: Iterable[Any], published: datetime | None,
                raw_date: str, image: str | None = None) -> tuple[Entry, str]:
    """Build an Entry (position set later) and return it with its content digest (which
    leaves the image out: ids made of it must not change when a feed adds pictures)."""
    if isinstance(raw_id, (int, float)) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    date_key = published.isoformat() if published else raw_date
    # surrogatepass: a JSON string may hold a lone surrogate ("\ud800"); the worker makes
    # such text valid before storing it (bot.models.storable), the digest must not fail first
    digest = hashlib.sha256(f"{title}\n{date_key}\n{summary[:200]}".encode(
        "utf-8", "surrogatepass")).hexdigest()
    entry_id = (raw_id.strip() if isinstance(raw_id, str) else "") or link or f"sha256:{digest}"
    categories = dict.fromkeys(c for t in tags if isinstance(t, str) and (c := plain(t)))
    if not title and summary:
        title = untitled(summary)
    return Entry(id=entry_id, link=link, title=title, summary=summary, author=author,
                 categories=tuple(categories), published=published, image=image), digest


def read_each(raws: Iterable[T], read: Callable[[T], tuple[Entry, str]],
              raw_id: Callable[[T], object]) -> Iterator[tuple[Entry, str]]:
    """``read`` each raw entry; one that cannot be read becomes an Entry with an ``error``
    (recorded as a failed post that says why) instead of losing the whole feed."""
    for raw in raws:
        try:
            yield read(raw)
        except Exception as exc:
            rid = raw_id(raw)
            digest = hashlib.sha256(repr(raw)[:4000].encode("utf-8", "surrogatepass")).hexdigest()
            entry_id = rid.strip() if isinstance(rid, str) and rid.strip() else f"sha256:{digest}"
            yield Entry(id=entry_id, link=None, title="",
                        error=f"could not read this entry: {type(exc).__name__}: {exc}"), digest


def unique_entries(items: Iterable[tuple[Entry, str]]) -> list[Entry]:
    """Number entries in order; give repeated ids a digest suffix; drop exact repeats."""
    seen: set[str] = set()
    seen_content: set[tuple[str, str]] = set()
    out: list[Entry] = []
    for entry, digest in items:
        if (entry.id, digest) in seen_content:
            continue
        seen_content.add((entry.id, digest))
        entry_id = entry.id if entry.id not in seen else f"{entry.id}#{digest[:12]}"
        if entry_id in seen:
            continue
        seen.add(entry_id)
        out.append(replace(entry, id=entry_id, position=len(out)))
    return out


def string(value: object) -> str | None:
    """A JSON value if it is a string, else None."""
    return value if isinstance(value, str) else None


def as_list(value: object) -> list[Any]:
    """A JSON value as a list: a list as is, one object or string as a list of one."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, (dict, str)) else []


def http_url(base: str, href: str | None) -> str | None:
    """``href`` made absolute against ``base`` and normalised (:func:`bot.links.normalise_link`:
    an IRI becomes a URI, userinfo goes); None unless it is an http(s) URL with a host."""
    return normalise_link(href, base) if href else None


def image_url(feed_url: str, href: object, base: str = "",
              join: Callable[[str, str], str] | None = None) -> str | None:
    """An image's URL: ``href`` resolved against the entry's ``base`` (an xml:base, joined
    by ``join``: feedparser's join for XML, as links get theirs) and then ``feed_url``,
    normalised (:func:`bot.links.normalise_link`); None unless it is an http(s) URL with a
    host of at most :data:`IMAGE_MAX` characters."""
    if not isinstance(href, str) or not href.strip():
        return None  # (a blank reference would resolve to the feed's own URL)
    if _ABSOLUTE_HTTP.fullmatch(href):
        # what joining would give, without its cost (two urlparse, one urlunparse each):
        # an http(s) URL with a host comes out of a join as it went in, give or take an
        # empty "?" or "#" that normalise_link drops anyway
        link = normalise_link(href)
        return link if link is not None and len(link) <= IMAGE_MAX else None
    if base:
        try:
            href = (join or urljoin)(base, href)
        except ValueError:  # the stdlib's join of a broken "[" (feedparser's gives "")
            return None
        if not href:
            return None
    link = normalise_link(href, feed_url)
    return link if link is not None and len(link) <= IMAGE_MAX else None

