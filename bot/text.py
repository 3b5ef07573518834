"""Text helpers, one home each."""

from __future__ import annotations


def clip(text: str | None, width: int) -> str:
    """``text`` on one line (whitespace collapsed), at most ``width`` characters: cut, it ends
    with "…". For messages and tables that show text from feeds, servers or users."""
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"
