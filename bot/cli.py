"""The operator's commands (everything but ``run``), against the service's SQLite file.

Bad input raises :class:`ConfigError` (exit 2): an unknown feed or post, an invalid regex or
template, a ``DATABASE_PATH`` that is a directory or not an SQLite file. A failure to do the
work raises another :class:`BotError` or returns 1 (exit 1): a feed that cannot be fetched.

Read-only commands (``feeds list``, ``posts``, ``status``) never create the database;
``preview`` never writes anything, not even the database's WAL files.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import aiohttp

from bot.compose import compose_posts, weighted_length
from bot.config import CREDENTIALS, Settings, _hashtags, check_feed_url, check_template
from bot.errors import ConfigError, FeedError, FeedParseError, StorageError
from bot.invocation import command
from bot.models import ParsedFeed
from bot.store import FeedRow, Post, Store
from bot.text import clip

T = TypeVar("T")
SQLITE_HEADER = b"SQLite format 3\x00"
NO_DATABASE = ("no database at {path!r} yet (DATABASE_PATH): `{cmd} run` or `{cmd} feeds add URL` "
               "creates it")
# -- helpers -----------------------------------------------------------------------------------


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _ago(ts: float | None, now: float) -> str:
    return f"{_span(now - ts)} ago" if ts else "never"


def _until(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    return "due" if ts <= now else f"in {_span(ts - now)}"


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


def database_problem(path: str) -> str | None:
    """Why ``path`` cannot be the bot's database (a directory, not SQLite, …), or None."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    where = f"DATABASE_PATH={path!r}"
    if os.path.isdir(path):
        example = os.path.join(path, "bot.sqlite3")
        return f"{where} is a directory; expected a file such as {example!r}"
    if os.path.exists(path):
        try:
            with open(path, "rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except OSError as exc:
            return f"{where} cannot be read: {exc.strerror or exc}"
        if head and head != SQLITE_HEADER:
            return f"{where} is not an SQLite database (is it the right file?)"
        return None
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f"{where}: the directory {parent!r} does not exist"
    return None


def _usable_database(path: str) -> bool:
    """Raise ConfigError if ``path`` cannot be the database; say whether it exists yet."""
    if problem := database_problem(path):
        raise ConfigError(problem)
    return path == ":memory:" or os.path.exists(path)


async def open_store(path: str, *, create: bool) -> Store | None:
    """The store, migrated; None when the file does not exist and ``create`` is false."""
    if not _usable_database(path) and not create:
        return None
    try:
        return await Store.open(path)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot use the database {path!r} (DATABASE_PATH): {exc}") from None


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


def _feed_settings(row: FeedRow) -> str:
    parts = []
    for name, value in (("template", row.template), ("hashtags", row.hashtags),
                        ("include", row.include_re), ("exclude", row.exclude_re),
                        ("mentions", row.mentions)):
        if value:
            parts.append(f"{name}={value!r}")
    if row.backfill is not None:
        parts.append(f"backfill={row.backfill}")
    return " ".join(parts) or "-"


# -- dispatch ----------------------------------------------------------------------------------


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


# -- feeds ---------------------------------------------------------------------------------------


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


async def _closing(store: Store, pending: Awaitable[T]) -> T:
    try:
        return await pending
    finally:
        await store.close()


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 feed``, ``2 feeds``, ``1,000 entries``."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


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


# -- posts ---------------------------------------------------------------------------------------


async def posts(settings: Settings, args: argparse.Namespace) -> int:
    retrying = args.posts_command == "retry"
    if retrying and not args.ids and not args.all_failed:
        raise ConfigError("posts retry: give post IDs or --all-failed")
    if retrying and args.ids and args.all_failed:
        raise ConfigError("posts retry: give post IDs or --all-failed, not both")
    store = await open_store(settings.database_path, create=False)
    if store is None:
        if retrying and args.ids:
            raise ConfigError(f"not a failed post: {', '.join(map(str, args.ids))} "
                              f"(there is no database at {settings.database_path!r} yet)")
        print(NO_DATABASE.format(path=settings.database_path, cmd=command()))
        return 0
    try:
        if retrying:
            return await posts_retry(store, args)
        listed = await store.posts(args.state, args.limit)
    finally:
        await store.close()
    if not listed:
        print("no posts" + (f" in state {args.state}" if args.state else ""))
        return 0
    now = time.time()
    if args.wide:
        rows = [[str(p.id), p.state, str(p.attempts), _ago(p.created_at, now),
                 p.tweet_id or "-", clip(p.last_error, 300) or "-", clip(p.text, 300)]
                for p in listed]
        print(_table(rows, ["ID", "STATE", "TRIES", "CREATED", "TWEET", "LAST ERROR", "TEXT"]))
        return 0
    rows = [[str(p.id), p.state, str(p.attempts), _ago(p.created_at, now),
             p.text or f"(entry {p.link or '?'})"] for p in listed]
    print(_fitted(rows, ["ID", "STATE", "TRIES", "CREATED", "TEXT"], flex=4,
                  notes=[_post_note(p) for p in listed]))
    return 0


def _post_note(post: Post) -> str | None:
    """The line under a post in `posts`: where it is on X, or why it is not there yet."""
    if post.tweet_id:
        on_x = f"on X: https://x.com/i/status/{post.tweet_id}"
        return f"{on_x} ({post.last_error})" if post.last_error else on_x
    return post.last_error


async def posts_retry(store: Store, args: argparse.Namespace) -> int:
    if args.all_failed:
        changed = await store.retry_failed(None)
        if not changed:
            print("no failed posts")
            return 0
    else:
        ids = list(dict.fromkeys(args.ids))
        found = {i: await store.post(i) for i in ids}
        unknown = [str(i) for i, p in found.items() if p is None]
        if unknown:
            raise ConfigError(f"no such post: {', '.join(unknown)} "
                              f"(see `{command()} posts --state failed`)")
        not_failed = [f"{i} is {p.state}" for i, p in found.items()
                      if p is not None and p.state != "failed"]
        if not_failed:
            raise ConfigError(f"not a failed post: {', '.join(not_failed)} "
                              "(only failed posts can be retried)")
        changed = await store.retry_failed(ids)
    print(f"queued {plural(changed, 'post')} again (state pending); the running service "
          "sends them")
    return 0


# -- status --------------------------------------------------------------------------------------


async def status(settings: Settings) -> int:
    from bot.gate import GATE_KEY, Gate
    from bot.health import take

    store = await open_store(settings.database_path, create=False)
    if store is None:
        print(NO_DATABASE.format(path=settings.database_path, cmd=command()))
        return 0
    now = time.time()
    try:
        version = await store.user_version()
        gate = Gate.from_json(await store.get_meta(GATE_KEY))
        view = gate.view(now)
        snapshot = await take(store, view, posting_broken=gate.broken,
                              database_id=await store.get_meta("database_id"))
        next_due = await store.next_due_at()
    finally:
        await store.close()
    last = snapshot.last_successful_poll
    feeds = ", ".join(f"{state} {n}" for state, n in snapshot.feeds.items() if n)
    lines = [f"database:  {settings.database_path} (schema {version})",
             f"feeds:     {len(snapshot.rows)}" + (f" ({feeds})" if feeds else ""),
             "posts:     " + ", ".join(f"{k} {v}" for k, v in snapshot.posts.items())]
    if not view["open"]:
        lines.append(f"gate:      closed ({gate.reason}) for {_span(gate.until - now)} more, "
                     f"until {_when(gate.until)}: {gate.detail}")
    else:
        lines.append("gate:      open")
    lines.append(f"last poll: {_when(last)}" + (f" ({_ago(last, now)})" if last else ""))
    lines.append(f"service:   {await _probe_service(settings, snapshot.database_id)}")
    if snapshot.posts["pending"] and next_due is not None:
        lines.append("next post: " + (f"when the gate opens, {_when(gate.until)}"
                                      if not view["open"] and next_due < gate.until
                                      else _until(next_due, now)))
    failing = snapshot.failing()
    for f in failing[:5]:
        lines.append(f"{f.state}:   {f.url} ({plural(f.consecutive_failures, 'failure')}): "
                     f"{clip(f.last_error, 80)}")
    if len(failing) > 5:
        lines.append(f"… and {len(failing) - 5} more: `{command()} feeds list`")
    print("\n".join(lines))
    return 0


async def _probe_service(settings: Settings, database_id: str | None) -> str:
    """Whether a service answers /healthz at HTTP_HOST:HTTP_PORT (as this shell sees them),
    and whether it is the one that serves this database."""
    if settings.http_port == 0:
        return "HTTP_PORT=0: cannot tell whether it runs"
    host = settings.http_host
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    url = f"http://{host}:{settings.http_port}/healthz"
    try:
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError, OSError):
        return f"not answering at {url}"
    if isinstance(body, dict) and body.get("status") == "starting":
        return f"starting at {url}"
    if not isinstance(body, dict) or body.get("database_id") != database_id:
        return (f"not running on this database: the service answering at {url} serves "
                "another one (another DATABASE_PATH or HTTP_PORT?)")
    return f"answering at {url} ({resp.status} {body.get('status', '?')})"


# -- preview -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Subscribed:
    template: str | None = None
    hashtags: str | None = None
    include_re: str | None = None
    exclude_re: str | None = None
    mentions: str | None = None


def read_feed_settings(path: str, url: str) -> _Subscribed | None:
    """A subscribed feed's own settings, read without writing a byte (None if unknown).

    Without a ``-wal`` file (no service running) the file is opened ``immutable``, which
    creates no ``-wal``/``-shm`` file; with one, read-only, which sees the newest commits.
    """
    if path == ":memory:" or not os.path.isfile(path) or database_problem(path):
        return None
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    if not os.path.exists(path + "-wal"):
        uri += "&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            row = conn.execute("SELECT template, hashtags, include_re, exclude_re, mentions "
                               "FROM feeds WHERE url = ?", (url,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return _Subscribed(*row) if row else None


async def fetch_feed(settings: Settings, url: str, *,
                     say: Callable[[str], None] = print) -> tuple[str, ParsedFeed]:
    """The feed at ``url`` and its URL. For a web page (a blog's home page), the feed the page
    advertises, as feed readers find it (:mod:`bot.discover`); ``say`` tells which one.
    Raises FeedError (HTTP error, timeout, not a feed) with a message for the user."""
    from bot.discover import choose, find_feed_links, looks_like_html
    from bot.feeds import Fetcher
    from bot.parse import parse_feed

    if url.startswith("sqlite:"):
        from bot.blogdb import read_blog_db

        return url, await read_blog_db(url)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.feed_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        fetcher = Fetcher(session, timeout=settings.feed_timeout,
                          max_bytes=settings.max_feed_bytes)
        result = await fetcher.fetch(url)
        if looks_like_html(result.body, result.content_type):
            links = find_feed_links(result.body, result.final_url or url, result.content_type)
            chosen = choose(links)
            if chosen is None:
                raise FeedParseError(f"not a feed: {url} is a web page that names no feed "
                                     '(no <link rel="alternate">); give the feed\'s own URL')
            named = f" ({chosen.title})" if chosen.title else ""
            say(f"{url} is a web page; it names its feed: {chosen.url}{named}")
            for other in (link for link in links if link != chosen):
                say(f"  it also names {other.url}" + (f" ({other.title})" if other.title else ""))
            url = chosen.url
            result = await fetcher.fetch(url)
    loop = asyncio.get_running_loop()
    return url, await loop.run_in_executor(None, parse_feed, result.body, url,
                                           result.content_type)


async def preview(settings: Settings, args: argparse.Namespace) -> int:
    from bot.decide import Filters, oldest_first

    url = args.url.strip()
    if why := check_feed_url(url):
        raise ConfigError(f"{url!r} is not a feed URL: {why}")
    own = await asyncio.to_thread(read_feed_settings, settings.database_path, url) \
        or _Subscribed()
    template = _template(args.template) if args.template else (own.template or
                                                               settings.tweet_template)
    extra = _hashtag_list(args.hashtags) if args.hashtags is not None else (own.hashtags or "")
    include = _regex("--include", args.include) if args.include is not None else own.include_re
    exclude = _regex("--exclude", args.exclude) if args.exclude is not None else own.exclude_re
    hashtags = " ".join(x for x in (settings.hashtags, extra) if x)
    mentions = args.mentions or own.mentions or settings.mentions
    try:
        filters = Filters.compile(include, exclude)
    except re.error as exc:
        raise ConfigError(f"the feed's own filter is not a valid regex: {exc}") from None

    try:
        url, parsed = await fetch_feed(settings, url)
    except FeedError as exc:
        print(f"feed-tweeter: cannot read {url}: {exc}", file=sys.stderr)
        return 1

    newest = oldest_first(parsed.entries, datetime.now(UTC))[-args.count:]
    used = [f"template {template!r}"]
    used += [f"{name} {value!r}" for name, value in (
        ("hashtags", hashtags), ("include", include), ("exclude", exclude)) if value]
    if mentions == "keep":
        used.append("mentions 'keep'")
    print(f"{parsed.title or url}: {len(parsed.entries)} entries; the newest {len(newest)}, "
          f"oldest first, would be tweeted as ({', '.join(used)}):\n")
    for entry in newest:
        if not filters.accepts(entry):
            print(f"--- filtered out (never tweeted): {clip(entry.title, 100)}\n")
            continue
        (composed,) = compose_posts(template, [entry], parsed.title, parsed.link, hashtags,
                                    keep_mentions=mentions == "keep")
        if composed.text is None:
            print(f"--- cannot be tweeted (it would be recorded as a failed post): "
                  f"{composed.error}\n  entry: {clip(entry.title, 100) or entry.id}\n")
            continue
        print(f"--- {weighted_length(composed.text)}/280\n{composed.text}\n")
    if not parsed.entries:
        print("(the feed has no entries)")
    return 0
