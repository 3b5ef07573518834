"""A blog's own SQLite database as a feed source: rows instead of XML.

``FEED_URLS=sqlite:///var/lib/blog/blog.db?table=posts&where=status%3D'published'`` makes the
worker call :func:`read_blog_db` instead of fetching and parsing; what it returns goes through
the same decide/store/dispatch pipeline as any feed (first poll = baseline, each id once per
feed, each link once across feeds, oldest first).

The URL (``sqlite:///ABSOLUTE/PATH/blog.db?table=TABLE&...``: file, table, column mapping,
``where=``, ``url_prefix=``, ``limit=``) is read and checked by :mod:`bot.blogdb_url`, whose
docstring describes it. This module reads the rows and makes them entries.

Reading: the blocking work runs in a thread. The file is opened ``mode=ro`` (URI), with a
busy timeout, ``PRAGMA query_only``, a deadline on the query, and one short read transaction
(the schema check and the SELECT see one snapshot), closed straight after. WAL and rollback
journal databases both work; the blog's writers are never blocked for longer than that read.

Values: ``id`` is the column's text (trimmed; a row without one is skipped); ``title`` and
``summary`` are plain text (HTML tags dropped when the value looks like HTML, whitespace
collapsed); ``published`` is ISO-8601 text (no zone = UTC; SQLite's ``CURRENT_TIMESTAMP``
form works), RFC 822 text, or a number of unix seconds (values of 1e11 and more are taken as
milliseconds, microseconds or nanoseconds); anything else is None.

Errors: :class:`BlogDbError` (a :class:`bot.errors.FeedError`) for everything that can go
wrong with the file, the schema or the query, so the worker records it on the feed and
retries with backoff; nothing else escapes :func:`read_blog_db`. :func:`parse_blog_db_url`
raises :class:`bot.errors.ConfigError` naming the bad part of the URL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

# "x as x": still bot.blogdb.<name> as before the split
from bot.blogdb_url import CAN_BE_NONE, IDENTIFIER, BlogDbSource, parse_blog_db_url
from bot.blogdb_url import DEFAULT_LIMIT as DEFAULT_LIMIT
from bot.blogdb_url import FIELDS as FIELDS
from bot.blogdb_url import MAX_LIMIT as MAX_LIMIT
from bot.blogdb_url import PARAMETERS as PARAMETERS
from bot.dates import parse_published
from bot.errors import ConfigError, FeedError
from bot.htmltext import plain_text, untitled
from bot.models import Entry, ParsedFeed

__all__ = ["BlogDbError", "BlogDbSource", "parse_blog_db_url", "read_blog_db"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 5.0  # seconds to wait for the blog's write lock before giving up this poll
QUERY_TIMEOUT = 30.0  # seconds a read may run in all (a runaway where= filter)
TEXT_MAX = 1000  # characters kept of a title or summary (compose cuts to fit anyway)
_WITHOUT_ROWID = re.compile(r"\bWITHOUT\s+ROWID\b", re.IGNORECASE)
_LOOKS_LIKE_HTML = re.compile(r"<[A-Za-z/!]")
_URL_SAFE = "/:?#[]@!$&'()*+,;=%~"  # kept as is when a relative value is quoted


class BlogDbError(FeedError):
    """A blog database could not be read: file, schema, lock or query."""


async def read_blog_db(url: str, *, busy_timeout: float = BUSY_TIMEOUT,
                       query_timeout: float = QUERY_TIMEOUT) -> ParsedFeed:
    """Read the newest rows of a blog's table as a feed; raises only :class:`BlogDbError`."""
    try:
        source = parse_blog_db_url(url)
    except ConfigError as exc:
        raise BlogDbError(str(exc)) from None
    return await asyncio.to_thread(read_source, source, busy_timeout=busy_timeout,
                                   query_timeout=query_timeout)


def read_source(source: BlogDbSource, *, busy_timeout: float = BUSY_TIMEOUT,
                query_timeout: float = QUERY_TIMEOUT) -> ParsedFeed:
    """The blocking part of :func:`read_blog_db` (call it in a thread)."""
    started = time.monotonic()
    path = source.path
    if not os.path.exists(path):
        raise BlogDbError(f"database file not found: {path}")
    if not os.path.isfile(path):
        raise BlogDbError(f"not a database file: {path}")
    stage = "open"
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=busy_timeout,
                               isolation_level=None)
    except sqlite3.Error as exc:
        raise _wrapped(source, exc, stage, busy_timeout, query_timeout) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {max(0, int(busy_timeout * 1000))}")
        conn.execute("PRAGMA query_only = 1")
        deadline = time.monotonic() + query_timeout
        conn.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
        conn.execute("BEGIN")  # deferred: a read transaction from the first SELECT on
        stage = "schema"
        fields, has_rowid = _present_fields(conn, source)
        stage = "query"
        rows = conn.execute(_select_sql(source, fields, has_rowid)).fetchall()
        conn.execute("COMMIT")  # let go of the read lock / WAL snapshot at once
    except (sqlite3.Error, sqlite3.Warning) as exc:
        raise _wrapped(source, exc, stage, busy_timeout, query_timeout) from None
    finally:
        conn.close()
    feed = _feed(source, fields, rows)
    log.debug("blogdb_read path=%s table=%s rows=%d entries=%d ms=%.1f", path, source.table,
              len(rows), len(feed.entries), (time.monotonic() - started) * 1000)
    return feed


def _present_fields(conn: sqlite3.Connection,
                    source: BlogDbSource) -> tuple[dict[str, str], bool]:
    """The fields to select and their actual column names; whether the table has a rowid.
    Raises BlogDbError naming a missing table or column."""
    row = conn.execute(
        "SELECT type, sql FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name = ? COLLATE NOCASE", (source.table,)).fetchone()
    if row is None:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")]
        has = f"has: {_names(tables)}" if tables else "it has no tables"
        raise BlogDbError(f"table '{source.table}' not found in {source.path} ({has})")
    kind, sql = row
    has_rowid = kind == "table" and not _WITHOUT_ROWID.search(sql or "")
    names = [r[1] for r in conn.execute(f"PRAGMA table_info({_quote(source.table)})")]
    actual = {n.lower(): n for n in names}
    present: dict[str, str] = {}
    for name, column in source.columns.items():
        if column is None:
            continue
        if column.lower() in actual:
            present[name] = actual[column.lower()]
        elif name not in source.optional:
            hint = f"set {name}= to one of them"
            if name in CAN_BE_NONE:
                hint += f", or {name}= (empty) if the table has none"
            raise BlogDbError(f"column '{column}' not found in table '{source.table}' "
                              f"(has: {_names(names)}); {hint}")
    return present, has_rowid


def _select_sql(source: BlogDbSource, fields: Mapping[str, str], has_rowid: bool) -> str:
    sql = (f"SELECT {', '.join(_quote(c) for c in fields.values())} "
           f"FROM {_quote(source.table)}")
    if source.where:
        sql += f" WHERE (\n{source.where}\n)"  # newlines: a trailing -- comment stays inside
    order = []
    if "published" in fields:
        order.append(f"{_quote(fields['published'])} DESC")
    if has_rowid:
        order.append("rowid DESC")
    if order:
        sql += " ORDER BY " + ", ".join(order)
    return sql + f" LIMIT {int(source.limit)}"


def _quote(identifier: str) -> str:
    assert IDENTIFIER.fullmatch(identifier), identifier  # checked when the URL was parsed
    return f'"{identifier}"'


def _names(names: list[str], most: int = 20) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", … ({len(names) - most} more)" if len(names) > most else "")


def _wrapped(source: BlogDbSource, exc: Exception, stage: str, busy_timeout: float,
             query_timeout: float) -> BlogDbError:
    path = source.path
    text = str(exc)
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith("SQLITE_BUSY") or "database is locked" in text:
        return BlogDbError(f"{path}: database is locked (the blog held its write lock for "
                           f"more than {busy_timeout:g}s); the next poll tries again")
    if name == "SQLITE_INTERRUPT" or text == "interrupted":
        return BlogDbError(f"{path}: reading table '{source.table}' took longer than "
                           f"{query_timeout:g}s (check where=)")
    if name == "SQLITE_NOTADB" or "file is not a database" in text:
        return BlogDbError(f"{path}: not an SQLite database")
    if name == "SQLITE_READONLY_DIRECTORY":
        return BlogDbError(f"{path}: a WAL database whose -wal and -shm files are absent and "
                           f"cannot be created here: give the bot write access to "
                           f"{os.path.dirname(path)}, or they appear while the blog has it open")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return BlogDbError(f"{path}: cannot open the database read-only ({text})")
    if stage == "query":
        where = f" with where={source.where!r}" if source.where else ""
        return BlogDbError(f"{path}: reading table '{source.table}'{where} failed: {text}")
    return BlogDbError(f"{path}: {text}")


# -- rows to entries ---------------------------------------------------------------------

def _feed(source: BlogDbSource, fields: Mapping[str, str], rows: list[tuple[Any, ...]]
          ) -> ParsedFeed:
    names = list(fields)
    entries: list[Entry] = []
    skipped = 0
    for position, row in enumerate(rows):
        values = dict(zip(names, row, strict=True))
        entry_id = _text(values.get("id"))
        if not entry_id:
            skipped += 1
            continue
        title = _plain(values.get("title"))
        summary = _plain(values.get("summary"))
        if not title and summary:
            title = untitled(summary)
        entries.append(Entry(
            id=entry_id,
            link=make_link(values.get("url"), source.url_prefix),
            title=title,
            summary=summary,
            published=parse_published(values.get("published")),
            position=position,
        ))
    if skipped:
        log.warning("blogdb_rows_skipped path=%s table=%s count=%d reason=no_id (map id= to "
                    "a column that is never empty)", source.path, source.table, skipped)
    filename = os.path.basename(source.path)
    return ParsedFeed(title=f"{source.table} in {filename}", link=source.url_prefix,
                      entries=entries)


def make_link(value: object, prefix: str | None) -> str | None:
    """The entry's link from a url column value and the feed's url_prefix (see module doc)."""
    text = _text(value)
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return text  # already absolute: the publisher's own link
    if prefix is None:
        return None
    if text.startswith("//"):  # scheme-relative: take the prefix's scheme
        return f"{urlsplit(prefix).scheme}:{quote(text, safe=_URL_SAFE)}"
    rest = quote(text, safe=_URL_SAFE)  # spaces and non-ASCII percent-encoded; % kept
    if rest.startswith("/"):
        return prefix.rstrip("/") + rest
    if prefix.endswith(("/", "=", "?", "&", "#")):
        return prefix + rest
    if rest.startswith(("?", "#")) and urlsplit(prefix).path:
        return prefix + rest
    return prefix + "/" + rest


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _plain(value: object) -> str:
    """Plain text: tags dropped when it looks like HTML, whitespace collapsed, capped."""
    text = _text(value)
    return plain_text(text, "html" if _LOOKS_LIKE_HTML.search(text) else None, TEXT_MAX)
