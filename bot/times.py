"""Time helpers, one home each: UTC datetimes, ISO text, spans, and ``Retry-After``."""

from __future__ import annotations

import email.utils
import math
import re
from datetime import UTC, datetime

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
