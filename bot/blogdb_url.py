"""The ``sqlite:`` feed URL of a blog's own database: one job, read and check it.

:func:`parse_blog_db_url` turns the URL into a :class:`BlogDbSource` (the file, the table, the
column of each field, the filter, the link prefix and the row limit) or raises
:class:`bot.errors.ConfigError` naming the bad part of the URL. :mod:`bot.blogdb` reads the rows.

URL form (a standard URL; the query is ``application/x-www-form-urlencoded``)::

    sqlite:///ABSOLUTE/PATH/blog.db?table=TABLE[&id=COL][&title=COL][&url=COL]
        [&published=COL][&summary=COL][&where=SQL][&url_prefix=URL][&limit=N]

* The path is absolute: ``sqlite:///var/lib/blog/blog.db`` is ``/var/lib/blog/blog.db``
  (``sqlite:////var/...``, SQLAlchemy's spelling, means the same). ``sqlite:blog.db`` and
  other relative paths are refused: the URL is the feed's identity in the bot's database,
  and a relative path would point at another file whenever the working directory differs
  (the service vs. ``bot feeds add`` run from a shell). No host, no ``#fragment`` (write a
  ``#`` as ``%23``).
* Columns default to ``id``, ``title``, ``url``, ``published``, ``summary``; each can be
  mapped (``title=headline``). ``id``, ``title``, ``url`` and ``published`` must exist
  unless mapped to nothing (``published=``, ``url=``, ``summary=``; ``id`` and ``title``
  cannot be). ``summary`` may be missing unless it is mapped explicitly.
* Table and column names must be plain identifiers (``^[A-Za-z_][A-Za-z0-9_]*$``); they are
  then double-quoted in the SQL. ``table=`` may name a view.
* ``where=`` is the operator's own SQL expression, applied as ``WHERE (<where>)`` in a
  read-only connection: one statement only, no bound parameters; ``+`` means a space,
  ``%2B`` a plus, ``%26`` an ``&``, ``%2C`` a comma (FEED_URLS splits on commas and spaces).
* ``url_prefix=`` (an absolute http(s) URL) turns a relative path or a slug into a link by
  concatenation with exactly one ``/`` at the seam: ``https://blog.example/posts/`` or
  ``https://blog.example/posts`` + ``hello`` (or ``/hello``) give
  ``https://blog.example/posts/hello``; a prefix ending in ``=``, ``?``, ``&`` or ``#`` is
  not given a slash (``https://blog.example/?p=`` + ``42``). Spaces and non-ASCII characters
  of the value are percent-encoded. A value that is already an absolute http(s) URL is kept
  as is; without a prefix, a relative value gives no link (the tweet then has none). The
  prefix is also the feed's home link.
* ``limit=`` (default 100, at most 10000): the newest rows read per poll, newest first by
  the ``published`` column (then rowid); without one, by rowid (a view or a WITHOUT ROWID
  table: the table's own order).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import unquote, unquote_plus, urlsplit

from bot.errors import ConfigError

__all__ = ["CAN_BE_NONE", "DEFAULT_LIMIT", "FIELDS", "IDENTIFIER", "MAX_LIMIT", "PARAMETERS",
           "BlogDbSource", "parse_blog_db_url"]

FIELDS = ("id", "title", "url", "published", "summary")
CAN_BE_NONE = frozenset({"url", "published", "summary"})  # `published=` maps to no column
PARAMETERS = (*FIELDS, "table", "where", "url_prefix", "limit")
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a table or column name


@dataclass(frozen=True, slots=True)
class BlogDbSource:
    """A parsed ``sqlite:`` feed URL.

    ``columns`` maps each of :data:`FIELDS` to its column name, or None when mapped to no
    column; ``optional`` holds the fields whose column may be missing from the table.
    """

    path: str
    table: str
    columns: Mapping[str, str | None] = field(
        default_factory=lambda: MappingProxyType({f: f for f in FIELDS}))
    optional: frozenset[str] = frozenset({"summary"})
    where: str | None = None
    url_prefix: str | None = None
    limit: int = DEFAULT_LIMIT


def parse_blog_db_url(url: str) -> BlogDbSource:
    """Read a ``sqlite:`` feed URL; raises ConfigError naming the part that is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigError(f"{url!r}: not a sqlite: URL")
    if parts.netloc:
        raise ConfigError(f"{url!r}: a sqlite: URL names a local file, not a host "
                          f"({parts.netloc!r}); write sqlite:///absolute/path/blog.db?table=...")
    if parts.fragment:
        raise ConfigError(f"{url!r}: unexpected '#{parts.fragment}'; write a '#' as %23")
    path = unquote(parts.path)
    if not path or path.endswith("/"):
        raise ConfigError(f"{url!r}: no database file in the path; write "
                          "sqlite:///absolute/path/blog.db?table=...")
    if not path.startswith("/"):
        raise ConfigError(f"{url!r}: relative path {path!r}; write the absolute path, "
                          f"e.g. sqlite:///var/lib/blog/{os.path.basename(path) or 'blog.db'}"
                          "?table=...")
    path = "/" + path.lstrip("/")
    if "\x00" in path:
        raise ConfigError(f"{url!r}: the path contains a NUL character")

    params: dict[str, str] = {}
    for item in parts.query.split("&"):
        if not item:
            continue
        name, sep, raw = item.partition("=")
        name = unquote_plus(name)
        if not sep:
            raise ConfigError(f"{url!r}: {name!r} has no value; expected NAME=VALUE")
        if name not in PARAMETERS:
            raise ConfigError(f"{url!r}: unknown parameter {name!r}; known: "
                              f"{', '.join(PARAMETERS)}")
        if name in params:
            raise ConfigError(f"{url!r}: {name}= is given twice")
        value = unquote_plus(raw)
        if "\x00" in value:
            raise ConfigError(f"{url!r}: {name}= contains a NUL character")
        params[name] = value

    table = params.get("table", "").strip()
    if not table:
        raise ConfigError(f"{url!r}: missing table=, the table (or view) that holds the posts, "
                          "e.g. ?table=posts")
    _check_identifier(url, "table", table)

    columns: dict[str, str | None] = {}
    optional = set()
    for name in FIELDS:
        if name not in params:
            columns[name] = name
            if name == "summary":
                optional.add(name)
            continue
        column = params[name].strip()
        if not column:
            if name not in CAN_BE_NONE:
                raise ConfigError(f"{url!r}: {name}= needs a column name")
            columns[name] = None
            continue
        _check_identifier(url, name, column)
        columns[name] = column

    where = params.get("where", "").strip() or None
    url_prefix = params.get("url_prefix", "").strip() or None
    if url_prefix is not None:
        prefix_parts = urlsplit(url_prefix)
        if prefix_parts.scheme not in ("http", "https") or not prefix_parts.netloc:
            raise ConfigError(f"{url!r}: url_prefix={url_prefix!r} is not an absolute http(s) "
                              "URL, e.g. url_prefix=https://blog.example/posts/")
    limit = DEFAULT_LIMIT
    if "limit" in params:
        raw_limit = params["limit"].strip()
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise ConfigError(f"{url!r}: limit={raw_limit!r} is not a whole number from 1 to "
                              f"{MAX_LIMIT}")
        limit = int(raw_limit)
    return BlogDbSource(path=path, table=table, columns=MappingProxyType(columns),
                        optional=frozenset(optional), where=where, url_prefix=url_prefix,
                        limit=limit)


def _check_identifier(url: str, name: str, value: str) -> None:
    if not IDENTIFIER.fullmatch(value):
        raise ConfigError(f"{url!r}: {name}={value!r} is not a plain identifier (letters, "
                          "digits and _, not starting with a digit)")
