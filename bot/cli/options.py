"""Checking the values of command-line options (a regex, a template, hashtags): a bad one
raises :class:`ConfigError` naming the option."""

from __future__ import annotations

import re

from bot.config import _hashtags, check_template
from bot.errors import ConfigError


def _regex(flag: str, pattern: str) -> str:
    try:
        re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"{flag} {pattern!r} is not a valid regex: {exc}") from None
    return pattern


def _template(template: str) -> str:
    return check_template(template, f"--template {template!r}")


def _hashtag_list(raw: str) -> str:
    try:
        return _hashtags(raw)
    except ValueError as exc:
        raise ConfigError(f"--hashtags {raw!r}: {exc}") from None
