"""Time helpers, one home each: UTC datetimes, ISO text, spans, ``Retry-After`` and the
resets a 429 names."""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def utc(value: datetime) -> datetime:
    """Aware UTC; a naive value is taken as UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(ts: float | None) -> str | None:
    """``2026-11-30T12:00:00Z`` for unix seconds (None for none, or for 0)."""
    if not ts:
        return None
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # beyond year 9999: say so, never crash
        return "9999-12-31T23:59:59Z"


def span(seconds: float) -> str:
    """A duration for people: ``45s``, ``5m``, ``3h``, ``2d``."""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def retry_after(value: str | None, now: float) -> float | None:
    """When a ``Retry-After`` header (delta-seconds or an HTTP date) says to come back, as
    unix seconds; None when it is missing or unreadable."""
    if not value or not value.strip():
        return None
    if _DELTA_SECONDS.fullmatch(value.strip()):  # a number of seconds, never negative
        seconds = float(value)
        return now + seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return max(now, utc(when).timestamp())


def epoch_header(headers: Any, name: str) -> float | None:
    """A header holding epoch seconds (a rate limit's reset), as a finite float; None when
    it is missing or no number."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def first_future(now: float, candidates: Iterable[float | None]) -> float | None:
    """The first of ``candidates`` (resets named by a 429's headers, in order of trust) that
    is in the future; None when none is: a zero wait would hammer the server."""
    for reset in candidates:
        if reset is not None and reset > now:
            return reset
    return None
