"""Switch ``bot.parse``'s fast XML path (:mod:`bot.fastxml`) off and on, so that
``bench.parsing`` can measure it against feedparser alone."""

from __future__ import annotations

from types import ModuleType

from bot.fastxml import feedparser_result, parse

__all__ = ["feedparser_result", "install", "parse", "uninstall"]


def install(parse_module: ModuleType) -> None:
    """Use the fast path in ``parse_module`` (bot.parse), in this process."""
    parse_module.FAST_PATH = True  # type: ignore[attr-defined]


def uninstall(parse_module: ModuleType) -> None:
    """feedparser only, as before the fast path."""
    parse_module.FAST_PATH = False  # type: ignore[attr-defined]
