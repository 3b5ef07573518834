"""Text helpers, one home each."""

from __future__ import annotations

import re

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def clip(text: str | None, width: int) -> str:
    """``text`` on one line (whitespace collapsed), at most ``width`` characters: cut, it ends
    with "…". For messages and tables that show text from feeds, servers or users."""
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def page_excerpt(body: bytes, width: int = 120) -> str:
    """What an error body that is not JSON says, on one line: an HTML page's title (a proxy's
    502), else its first ``width`` characters; "" for an empty body."""
    text = " ".join(body[:4096].decode("utf-8", "replace").split())
    if text.startswith("<"):
        title = _TITLE.search(text)
        return f"HTML page: {' '.join(title.group(1).split())}" if title else "HTML page"
    return text[:width]


def non_json_reason(body: bytes) -> str:
    """``non-JSON body: …`` (see :func:`page_excerpt`), or ``empty body``."""
    said = page_excerpt(body)
    return f"non-JSON body: {said}" if said else "empty body"
