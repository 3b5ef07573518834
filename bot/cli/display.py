"""How the CLI shows things: times, spans, counts, a feed's settings, and tables that fit the
terminal."""

from __future__ import annotations

import shutil

from bot.store import FeedRow
from bot.text import clip
from bot.times import iso, span


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return (iso(ts) or "-").replace("T", " ")


def _ago(ts: float | None, now: float) -> str:
    return f"{span(now - ts)} ago" if ts else "never"


def _until(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    return "due" if ts <= now else f"in {span(ts - now)}"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 feed``, ``2 feeds``, ``1,000 entries``."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def _feed_settings(row: FeedRow) -> str:
    parts = []
    for name, value in (("template", row.template), ("hashtags", row.hashtags),
                        ("include", row.include_re), ("exclude", row.exclude_re),
                        ("mentions", row.mentions), ("to", row.destinations)):
        if value:
            parts.append(f"{name}={value!r}")
    if row.backfill is not None:
        parts.append(f"backfill={row.backfill}")
    return " ".join(parts) or "-"


def _terminal_width() -> int:
    """The terminal's width (COLUMNS when set; 100 when the output is not a terminal)."""
    return max(40, shutil.get_terminal_size((100, 24)).columns)


def _fitted(rows: list[list[str]], header: list[str], flex: int,
            notes: list[str | None] | None = None) -> str:
    """A table that fits the terminal: column ``flex`` (a URL, a text) takes the room the
    others leave and is clipped to it; a row's note (an error) goes on a line of its own."""
    width = _terminal_width()
    fixed = sum(max(len(c) for c in col) + 2
                for i, col in enumerate(zip(header, *rows, strict=False)) if i != flex)
    room = max(12, width - fixed)
    clipped = [[clip(c, room) if i == flex else c for i, c in enumerate(r)] for r in rows]
    lines = _table(clipped, header).splitlines()
    out = [lines[0]]
    for line, note in zip(lines[1:], notes or [None] * len(rows), strict=True):
        out.append(line)
        if note:
            out.append("    ↳ " + clip(note, width - 6))
    return "\n".join(out)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)
