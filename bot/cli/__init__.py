"""The operator's commands (everything but ``run``), against the service's SQLite file.

Bad input raises :class:`ConfigError` (exit 2): an unknown feed or post, an invalid regex or
template, a ``DATABASE_PATH`` that is a directory or not an SQLite file. A failure to do the
work raises another :class:`BotError` or returns 1 (exit 1): a feed that cannot be fetched.

Read-only commands (``feeds list``, ``posts``, ``status``) never create the database;
``preview`` never writes anything, not even the database's WAL files.

This module's one job is :func:`dispatch`, which sends a command to its module:

- :mod:`bot.cli.feed_commands`: ``feeds`` (list, add, remove, pause, resume, import, export)
- :mod:`bot.cli.post_commands`: ``posts`` and ``posts retry``
- :mod:`bot.cli.preview_command`: ``preview``, and :func:`fetch_feed` (autodiscovery)
- :mod:`bot.cli.status_command`: ``status``

with the helpers they share in :mod:`bot.cli.database` (opening DATABASE_PATH),
:mod:`bot.cli.display` (times, counts, tables) and :mod:`bot.cli.options` (checking options).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from bot.cli.database import (
    NO_DATABASE,
    SQLITE_HEADER,
    database_problem,
    open_store,
    read_feed_settings,
)
from bot.cli.display import plural
from bot.cli.feed_commands import feeds, feeds_add, feeds_export, feeds_import, feeds_list
from bot.cli.post_commands import posts, posts_retry
from bot.cli.preview_command import fetch_feed, preview
from bot.cli.status_command import status
from bot.config import CREDENTIALS, Settings
from bot.errors import ConfigError

__all__ = [
    "NO_DATABASE", "SQLITE_HEADER", "database_problem", "dispatch", "feeds", "feeds_add",
    "feeds_export", "feeds_import", "feeds_list", "fetch_feed", "open_store", "plural", "posts",
    "posts_retry", "preview", "read_feed_settings", "status",
]


async def dispatch(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from bot.logs import configure

    settings = Settings.from_env(env, require_feeds=False, require_credentials=False)
    for warning in settings.warnings:
        print(f"feed-tweeter: warning: {warning}", file=sys.stderr)
    configure("WARNING", settings.log_format,
              secrets=[env.get(name, "").strip() for name in CREDENTIALS])
    if args.command == "preview":
        return await preview(settings, args)
    if args.command == "feeds":
        return await feeds(settings, args)
    if args.command == "posts":
        return await posts(settings, args)
    if args.command == "status":
        return await status(settings)
    raise ConfigError(f"unknown command {args.command!r}")
