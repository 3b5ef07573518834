"""Dates read from feed text and database values, as aware UTC datetimes (None if unreadable).

One job: date *parsing* for :mod:`bot.parse`, :mod:`bot.jsonfeed` and :mod:`bot.blogdb`
(:mod:`bot.times` formats and converts times). feedparser's ``*_parsed`` struct_time,
``2020/1/10 14:33:00`` (which feedparser misreads; UTC), ISO-8601 (no zone = UTC), RFC 822,
and a database's number of unix seconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bot.times import utc

__all__ = ["iso_date", "parse_published", "rfc822_date", "slash_date", "struct_date"]

_SLASH_DATE = re.compile(r"\s*(\d{4})/(\d{1,2})/(\d{1,2})"
                         r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*")
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")


def struct_date(value: Any) -> datetime | None:
    """feedparser's *_parsed (a UTC struct_time) as an aware datetime."""
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = (int(v) for v in value[:6])
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def slash_date(raw: str) -> datetime | None:
    """``2020/1/10 14:33:00`` (time optional) as UTC; None for any other form."""
    m = _SLASH_DATE.fullmatch(raw) if "/" in raw else None
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g or 0) for g in m.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def iso_date(raw: str) -> datetime | None:
    """ISO-8601 (no zone = UTC), else RFC 822 (:func:`rfc822_date`)."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return rfc822_date(raw)
    return utc(value)


def rfc822_date(raw: str) -> datetime | None:
    """RFC 822 / HTTP date text (no zone = UTC)."""
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return utc(value)


def parse_published(value: object) -> datetime | None:
    """An aware UTC datetime from ISO-8601/RFC 822 text or unix seconds; None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _NUMBER.fullmatch(text):
            value = float(text)
        else:
            return iso_date(text)  # stripped and not empty
    if isinstance(value, (int, float)):
        seconds = float(value)
        if seconds != seconds:  # NaN
            return None
        for _ in range(3):  # milliseconds, microseconds, nanoseconds
            if abs(seconds) >= 1e11:
                seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None

