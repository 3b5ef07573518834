"""Plain values that flow between the modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Entry:
    """One article as read from a feed, already cleaned for tweeting.

    ``id`` is the entry's stable identity: its id/guid, else its link, else a hash of its
    title and date. ``link`` is absolute (resolved against the feed URL and xml:base) or None.
    ``title``, ``summary`` and ``author`` are plain text: HTML stripped, entities decoded,
    whitespace collapsed. ``position`` is the entry's index in the document (0 = first).
    """

    id: str
    link: str | None
    title: str
    summary: str = ""
    author: str = ""
    categories: tuple[str, ...] = ()
    published: datetime | None = None  # timezone-aware (UTC) when known
    position: int = 0


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    link: str | None
    entries: list[Entry] = field(default_factory=list)
