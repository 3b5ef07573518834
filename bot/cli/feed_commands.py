"""The ``feeds`` commands: list, add, remove, pause, resume, and import/export of feed lists
(OPML or a list of URLs)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from bot.cli.database import NO_DATABASE, _closing, database_problem, open_store
from bot.cli.display import _ago, _feed_settings, _fitted, _table, _until, plural
from bot.cli.options import _hashtag_list, _regex, _template
from bot.cli.preview_command import fetch_feed
from bot.config import Settings, check_feed_url
from bot.errors import ConfigError, FeedError
from bot.invocation import command
from bot.text import clip


async def feeds(settings: Settings, args: argparse.Namespace) -> int:
    action = args.feeds_command or "list"
    if action == "list":
        return await feeds_list(settings, getattr(args, "wide", False))
    if action == "add":
        return await feeds_add(settings, args)
    if action == "import":
        return await feeds_import(settings, args.file)
    if action == "export":
        return await feeds_export(settings, args.output)
    url = args.url
    store = await open_store(settings.database_path, create=False)
    if store is None:
        raise ConfigError(f"no such feed: {url!r} (there is no database at "
                          f"{settings.database_path!r} yet)")
    try:
        feed = await store.feed_by_url(url)
        if feed is None:
            raise ConfigError(f"no such feed: {url!r} (see `{command()} feeds list`)")
        if action == "remove":
            await store.set_feed_flag(url, active=0)
            print(f"removed {url} (its history is kept; a running service stops polling it "
                  "within 30 s)")
            if url in settings.feed_urls:
                print(f"note: {url} is still listed in FEED_URLS, so it comes back at the "
                      "service's next start unless you remove it from FEED_URLS too")
        elif action == "pause":
            if feed.paused:
                print(f"{url} is already paused")
            else:
                await store.set_feed_flag(url, paused=1)
                print(f"paused {url} (`{command()} feeds resume {url}` polls it again)")
        else:  # resume
            was = feed.state
            await store.set_feed_flag(url, paused=0, gone=0, active=1)
            if was in ("paused", "gone", "inactive"):
                await store.update_feed(feed.id, next_poll_at=0, consecutive_failures=0)
                print(f"resumed {url} (was {was}; a running service polls it within 30 s)")
            else:
                print(f"{url} is already being polled (state {was})")
    finally:
        await store.close()
    return 0


async def feeds_list(settings: Settings, wide: bool = False) -> int:
    store = await open_store(settings.database_path, create=False)
    if store is None:
        print(NO_DATABASE.format(path=settings.database_path, cmd=command()))
        return 0
    try:
        counts = await store.feed_counts()
        rows = await store.feeds()
    finally:
        await store.close()
    if not rows:
        print(f"no feeds yet: set FEED_URLS or run `{command()} feeds add URL`")
        return 0
    now = time.time()
    table = []
    for f in rows:
        seen, sent = counts.get(f.id, (0, 0))
        polled = f.state not in ("gone", "paused", "inactive")
        table.append([f.url, clip(f.title, 30) or "-", f.state, _ago(f.last_polled_at, now),
                      _until(f.next_poll_at, now) if polled else "-",
                      str(f.consecutive_failures), clip(f.last_error, 50) or "-",
                      str(seen), str(sent), _feed_settings(f)])
    if wide:
        print(_table(table, ["URL", "TITLE", "STATE", "LAST POLL", "NEXT POLL", "FAILURES",
                             "LAST ERROR", "SEEN", "SENT", "SETTINGS"]))
        return 0
    notes = [f"{plural(f.consecutive_failures, 'failure')}: {f.last_error}"
             if f.last_error and f.consecutive_failures else None for f in rows]
    print(_fitted([[r[0], r[2], r[3], r[4], r[7], r[8]] for r in table],
                  ["URL", "STATE", "LAST POLL", "NEXT POLL", "SEEN", "SENT"], flex=0,
                  notes=notes))
    return 0


async def feeds_import(settings: Settings, path: str) -> int:
    """Subscribe to every feed of an OPML file or a list of URLs, in one transaction."""
    from bot.opml import read_feed_list_file

    items = await asyncio.to_thread(read_feed_list_file, path)
    store = await open_store(settings.database_path, create=True)
    assert store is not None
    try:
        new = await store.import_feeds([item.url for item in items], time.time())
    finally:
        await store.close()
    already = len(items) - len(new)
    print(f"imported {plural(len(items), 'feed')} from {path}: {len(new)} new, "
          f"{already} already there. Each new feed's first poll records what is there and "
          f"tweets {'the newest ' + str(settings.backfill) if settings.backfill else 'nothing'}.")
    return 0


async def feeds_export(settings: Settings, output: str | None) -> int:
    """Every subscribed feed (FEED_URLS's and `feeds add`'s, paused ones too) as OPML 2.0."""
    from bot.opml import FeedListItem, write_opml

    store = await open_store(settings.database_path, create=False)
    rows = [] if store is None else await _closing(store, store.feeds())
    items = [FeedListItem(url=f.url, title=f.title) for f in rows if f.active]
    document = write_opml(items).encode("utf-8")
    if output in (None, "-"):
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
    else:
        await asyncio.to_thread(Path(output).write_bytes, document)
        print(f"exported {plural(len(items), 'feed')} to {output}")
    return 0


async def feeds_add(settings: Settings, args: argparse.Namespace) -> int:
    url = args.url.strip()
    if why := check_feed_url(url):
        raise ConfigError(f"{url!r} is not a feed URL: {why}")
    values: dict[str, object] = {}
    if args.template is not None:
        values["template"] = _template(args.template) if args.template else None
    if args.hashtags is not None:
        values["hashtags"] = _hashtag_list(args.hashtags) or None
    if args.include is not None:
        values["include_re"] = _regex("--include", args.include) or None
    if args.exclude is not None:
        values["exclude_re"] = _regex("--exclude", args.exclude) or None
    if args.backfill is not None:
        values["backfill"] = args.backfill
    if args.mentions is not None:
        values["mentions"] = args.mentions
    if getattr(args, "to", None) is not None:
        values["destinations"] = _destinations(settings, args.to)
    page = url
    if problem := database_problem(settings.database_path):  # before the network
        raise ConfigError(problem)
    if not args.no_check:  # read it once now: a typo or a dead feed is said at once
        try:
            url, _ = await fetch_feed(settings, url)
        except FeedError as exc:
            raise FeedError(f"cannot add {page}: {exc}. Nothing was added (--no-check adds it "
                            "anyway, for a feed that is down right now)") from None
    store = await open_store(settings.database_path, create=True)
    assert store is not None
    try:
        before = await store.feed_by_url(url)
        feed = await store.add_feed(url, time.time(), **values)
    finally:
        await store.close()
    if before is None:
        backfill = settings.backfill if feed.backfill is None else feed.backfill
        tweets = f"tweets the newest {backfill}" if backfill else "tweets nothing"
        print(f"added {url}: its first poll records what is there and {tweets}; "
              f"settings: {_feed_settings(feed)}")
        if args.no_check:
            print("not checked (--no-check): the service's log says whether it can be read")
    else:
        changed = ", ".join(k.removesuffix("_re") for k in values) or "nothing"
        print(f"{url} was already there: changed {changed}; settings: {_feed_settings(feed)}")
        if feed.state in ("paused", "gone"):
            print(f"note: it is {feed.state}; `{command()} feeds resume {url}` polls it again")
    return 0


def _destinations(settings: Settings, raw: str) -> str | None:
    """``--to x,mastodon``: the names, checked (each a destination name, and configured here
    when this environment configures any); '' clears them (every destination)."""
    from bot.destinations import check_names

    names = list(dict.fromkeys(n.strip().lower() for n in raw.replace(" ", ",").split(",")
                               if n.strip()))
    if not names:
        return None
    configured = [d.name for d in settings.destinations] or None  # None: not known here
    if problems := check_names(names, configured):
        raise ConfigError("--to: " + "; ".join(problems))
    return ",".join(names)
