"""Converters for settings: a variable's raw text to its checked value, or a ValueError
that says the form expected (durations, counts, sizes, switches, URLs, hashtags, names)."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kib|mib|gib|kb|mb|gb)?\s*$", re.IGNORECASE)
_SIZE_UNIT = {
    None: 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3,
}


def _nonempty(raw: str) -> str:
    return raw.strip()


def _parse_duration(raw: str) -> float:
    m = _DURATION.match(raw)
    if not m:
        raise ValueError("expected a number of seconds such as 300, 1.5 or 5m "
                         "(units ms, s, m, h, d)")
    return float(m.group(1)) * _UNIT[m.group(2).lower() if m.group(2) else None]


MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def _show_seconds(seconds: float) -> str:
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _duration(low: float, high: float, *, low_included: bool = False
              ) -> Callable[[str], float]:
    """A duration between ``low`` (excluded unless ``low_included``) and ``high`` seconds."""
    def convert(raw: str) -> float:
        value = _parse_duration(raw)
        if value > high or value < low or (value == low and not low_included):
            bound = f"from {_show_seconds(low)}" if low_included else \
                f"greater than {_show_seconds(low)}"
            raise ValueError(f"expected a duration {bound} up to {_show_seconds(high)}")
        return value
    return convert


def _count(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``."""
    def convert(raw: str) -> int:
        value = _int(raw)
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low:,} to {high:,}")
        return value
    return convert


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def _optional_count(high: int) -> Callable[[str], int | None]:
    """A whole number from 1 to ``high``, or unlimited (``unlimited``, ``none`` or 0)."""
    def convert(raw: str) -> int | None:
        if raw.strip().lower() in ("unlimited", "none", "0"):
            return None
        try:
            return _count(1, high)(raw)
        except ValueError:
            raise ValueError(f"expected a whole number from 1 to {high:,}, or unlimited") \
                from None
    return convert


_MONEY = re.compile(r"^\s*\$?\s*(\d+(?:\.\d+)?)\s*(?:usd)?\s*$", re.IGNORECASE)


def _money(low: float, high: float) -> Callable[[str], float]:
    """An amount in US dollars from ``low`` to ``high``: ``0.20``, ``$5``, ``12.5 USD``."""
    def convert(raw: str) -> float:
        m = _MONEY.match(raw)
        if not m or not low <= float(m.group(1)) <= high:
            raise ValueError(f"expected an amount in US dollars from {low:g} to {high:,.0f}, "
                             "such as 0.20 or 25")
        return float(m.group(1))
    return convert


def _optional_money(high: float) -> Callable[[str], float | None]:
    """An amount in US dollars above 0 and up to ``high``, or unlimited (or 0)."""
    def convert(raw: str) -> float | None:
        if raw.strip().lower() in ("unlimited", "none", "0"):
            return None
        value = _money(0.0, high)(raw)
        if value <= 0:
            raise ValueError("expected an amount in US dollars above 0, or unlimited")
        return value
    return convert


def _port(raw: str) -> int:
    value = _int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("expected a TCP port, 0 to 65535")
    return value


MAX_FEED_BYTES_LIMIT = 1024**3


def _size(raw: str) -> int:
    m = _SIZE.match(raw)
    if not m or int(m.group(1)) <= 0:
        raise ValueError("expected a size in bytes such as 10485760 or 10MiB")
    value = int(m.group(1)) * _SIZE_UNIT[m.group(2).lower() if m.group(2) else None]
    if value > MAX_FEED_BYTES_LIMIT:
        raise ValueError("expected a size up to 1GiB")
    return value


def _base_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http(s):// URL such as https://api.twitter.com")
    return raw.strip().rstrip("/")


def _hashtags(raw: str) -> str:
    tags = raw.replace(",", " ").split()
    bad = [t for t in tags if not re.fullmatch(r"#?\w+", t)]
    if bad:
        raise ValueError(f"not a hashtag: {', '.join(bad)}; expected words like '#python #asyncio'")
    return " ".join(t if t.startswith("#") else f"#{t}" for t in tags)


MENTION_MODES = ("neutralise", "keep")


def mentions_mode(raw: str) -> str:
    """MENTIONS / ``--mentions``: "neutralise" (the default) or "keep"."""
    value = raw.strip().lower().replace("neutralize", "neutralise")
    if value not in MENTION_MODES:
        raise ValueError("expected neutralise (the default: an @name from a feed is not a live "
                         "mention) or keep (@names from feeds notify those accounts)")
    return value


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return value


def _log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("text", "json"):
        raise ValueError("expected text or json")
    return value
