"""Plain values that flow between the modules."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum


class PostState(StrEnum):
    """A post's life: pending -> sending (claimed, committed before the call) -> sent | failed."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class FeedState(StrEnum):
    """What ``feeds list``, /healthz, /metrics and ``status`` say of a feed."""

    NEW = "new"  # never read successfully yet
    OK = "ok"
    FAILING = "failing"  # its last poll failed; it is retried with backoff
    PAUSED = "paused"  # `feeds pause`
    GONE = "gone"  # the server said 410 Gone
    INACTIVE = "inactive"  # removed (`feeds remove`, or dropped from FEED_URLS)


@dataclass(frozen=True, slots=True)
class Entry:
    """One article as read from a feed, already cleaned for tweeting.

    ``id`` is the entry's stable identity: its id/guid, else its link, else a hash of its
    title and date. ``link`` is absolute (resolved against the feed URL and xml:base) or None.
    ``title``, ``summary`` and ``author`` are plain text: HTML stripped, entities decoded,
    whitespace collapsed. ``position`` is the entry's index in the document (0 = first).
    An entry with an ``error`` is recorded as seen with a failed post that gives the reason.
    ``image`` is the article's picture for a link card: an absolute http(s) URL of at most
    2048 characters, normalised like ``link``, or None (see bot.parse for where it is found).
    """

    id: str
    link: str | None
    title: str
    summary: str = ""
    author: str = ""
    categories: tuple[str, ...] = ()
    published: datetime | None = None  # timezone-aware (UTC) when known
    position: int = 0
    error: str | None = None  # why this entry cannot be tweeted, found while reading it
    # the picture of a link card (Bluesky's thumbnail): absolute http(s), <= 2048 characters,
    # normalised (bot.links.normalise_link), resolved against the entry's base; None if none
    image: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    link: str | None
    entries: list[Entry] = field(default_factory=list)


def valid_text(text: str) -> str:
    """``text`` with any lone surrogate (a JSON feed's ``"\\ud800"``) replaced by U+FFFD:
    SQLite, X and every other network only take valid Unicode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def storable(entry: Entry) -> Entry:
    """The entry with valid Unicode in every text field (usually the entry itself)."""
    fields = (entry.id, entry.link or "", entry.title, entry.summary, entry.author,
              entry.image or "", *entry.categories)
    try:
        "".join(fields).encode("utf-8")
    except UnicodeEncodeError:
        return replace(entry, id=valid_text(entry.id),
                       link=valid_text(entry.link) if entry.link else entry.link,
                       title=valid_text(entry.title), summary=valid_text(entry.summary),
                       author=valid_text(entry.author),
                       categories=tuple(valid_text(c) for c in entry.categories),
                       image=valid_text(entry.image) if entry.image else entry.image)
    return entry
