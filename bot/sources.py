"""Where a feed's entries come from, chosen from its URL in one place.

An ``http(s)://`` URL is a feed on the web (:class:`HttpSource`: a conditional GET by
:mod:`bot.feeds`, then :func:`bot.parse.parse_feed` off the event loop); a ``sqlite:`` URL is
a blog's own database (:class:`BlogDatabaseSource`, :mod:`bot.blogdb`). The worker's polls
and the ``preview`` and ``feeds add`` commands read feeds through :func:`source_for`, so they
read every feed the same way. Both raise only :class:`bot.errors.FeedError`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from bot.feeds import Fetcher, FetchResult
from bot.models import ParsedFeed
from bot.parse import parse_feed


@dataclass(frozen=True, slots=True)
class Reading:
    """What one read of a feed gave: a 200 with its entries, or a 304 (``parsed`` None)."""

    status: int
    parsed: ParsedFeed | None
    etag: str | None = None
    last_modified: str | None = None
    final_url: str | None = None  # where a permanent redirect led


class Source(Protocol):
    async def read(self, url: str, *, etag: str | None = None,
                   last_modified: str | None = None) -> Reading: ...


class HttpSource:
    """A feed on the web: fetched with a conditional GET, parsed in ``executor`` (a thread of
    this process when None, or other processes: ``PARSE_PROCESSES``)."""

    def __init__(self, fetcher: Fetcher, executor: Executor | None = None) -> None:
        self.fetcher = fetcher
        self.executor = executor

    async def read(self, url: str, *, etag: str | None = None,
                   last_modified: str | None = None) -> Reading:
        result = await self.fetcher.fetch(url, etag=etag, last_modified=last_modified)
        if result.status == 304:
            return Reading(304, None, result.etag, result.last_modified, result.final_url)
        parsed = await self.parse(result, url)
        return Reading(result.status, parsed, result.etag, result.last_modified,
                       result.final_url)

    async def fetch(self, url: str, *, etag: str | None = None,
                    last_modified: str | None = None) -> FetchResult:
        """The response alone (``feeds add`` looks at a web page's links before parsing)."""
        return await self.fetcher.fetch(url, etag=etag, last_modified=last_modified)

    async def parse(self, result: FetchResult, url: str) -> ParsedFeed:
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, parse_feed, result.body, url, result.content_type)


class BlogDatabaseSource:
    """A blog's own SQLite database, read-only, as a feed (``sqlite:///path?table=…``)."""

    def __init__(self, query_timeout: float | None = None) -> None:
        self.query_timeout = query_timeout

    async def read(self, url: str, *, etag: str | None = None,
                   last_modified: str | None = None) -> Reading:
        from bot.blogdb import QUERY_TIMEOUT, read_blog_db

        parsed = await read_blog_db(url, query_timeout=self.query_timeout or QUERY_TIMEOUT)
        return Reading(200, parsed)


def is_blog_database(url: str) -> bool:
    return url.startswith("sqlite:")


def source_for(url: str, http: HttpSource, blog_database: BlogDatabaseSource) -> Source:
    """The source that reads ``url``: its scheme decides."""
    return blog_database if is_blog_database(url) else http
