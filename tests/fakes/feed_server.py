"""A loopback blog / feed server for tests and the demo.

In-process use::

    server = FeedServer()
    await server.start()
    blog = server.add_blog("/blog/feed.xml", title="My blog")
    blog.publish("Hello")            # newest first in the RSS, like real blogs
    ...                              # the bot polls server.url("/blog/feed.xml")
    await server.close()

Paths may be added or changed after ``start()`` (dispatch is by exact path at request
time). Every request is counted in ``hits``/``hit_times``, whatever answers it.

Standalone use (the demo)::

    python -m tests.fakes.feed_server --port 0 --publish-every SECONDS [--initial N]

serves one blog at ``/feed.xml``, prints ``FEED_URL=http://127.0.0.1:PORT/feed.xml``
(flushed) and publishes "Article N" every SECONDS until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from xml.sax.saxutils import escape

from aiohttp import web

from tests.fakes.base import LoopbackServer, command_parser, run, stop_event

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Article:
    """One blog post as it appears in the feed."""

    n: int  # 1-based publication number within its blog
    title: str
    link: str
    guid: str
    summary: str = ""
    published: datetime = field(default_factory=lambda: datetime.now(UTC))
    categories: tuple[str, ...] = ()
    author: str = ""


def _http_date(dt: datetime) -> str:
    return format_datetime(dt.astimezone(UTC), usegmt=True)


class Blog:
    """An RSS 2.0 feed at one path of a :class:`FeedServer`."""

    def __init__(self, server: FeedServer, path: str, title: str = "Blog") -> None:
        self.server = server
        self.path = path
        self.title = title
        self.articles: list[Article] = []  # in publication order (oldest first)
        self.max_items = 20  # the feed shows the newest N
        self.delay = 0.0  # seconds before answering
        self.status: int | None = None  # when set, answer this status instead of the feed
        self.last_modified = datetime.now(UTC).replace(microsecond=0)
        stem = path.strip("/").rsplit(".", 1)[0] or "blog"
        self._posts_prefix = f"/{stem}/posts/"

    # -- content ---------------------------------------------------------------------------

    def publish(
        self,
        title: str,
        *,
        link: str | None = None,
        guid: str | None = None,
        summary: str = "",
        published: datetime | None = None,
        categories: Iterable[str] = (),
        author: str = "",
    ) -> Article:
        """Add a post. Defaults: link ``{base_url}/{path-stem}/posts/{n}``, guid = link,
        published = now, but always at least one second after the previous post."""
        n = len(self.articles) + 1
        if link is None:
            link = self.server.url(f"{self._posts_prefix}{n}")
        if published is None:
            published = datetime.now(UTC).replace(microsecond=0)
            if self.articles:
                previous = max(a.published for a in self.articles)
                published = max(published, previous + timedelta(seconds=1))
        article = Article(n, title, link, guid if guid is not None else link, summary,
                          published, tuple(categories), author)
        self.articles.append(article)
        self._touch()
        return article

    def edit(self, guid: str, *, title: str | None = None, summary: str | None = None) -> Article:
        """Change a post in place (same guid); the feed's ETag and Last-Modified change."""
        for article in self.articles:
            if article.guid == guid:
                if title is not None:
                    article.title = title
                if summary is not None:
                    article.summary = summary
                self._touch()
                return article
        raise KeyError(guid)

    def _touch(self) -> None:
        """Advance Last-Modified, strictly (HTTP dates have one-second resolution)."""
        now = datetime.now(UTC).replace(microsecond=0)
        self.last_modified = max(now, self.last_modified + timedelta(seconds=1))

    @property
    def url(self) -> str:
        """The feed's absolute URL."""
        return self.server.url(self.path)

    def render(self) -> bytes:
        """The RSS 2.0 document, newest ``max_items`` posts first."""
        newest = list(reversed(self.articles))[: self.max_items]
        items = []
        for a in newest:
            parts = [
                f"<title>{escape(a.title)}</title>",
                f"<link>{escape(a.link)}</link>",
                f'<guid isPermaLink="{"true" if a.guid == a.link else "false"}">'
                f"{escape(a.guid)}</guid>",
                f"<pubDate>{_http_date(a.published)}</pubDate>",
            ]
            if a.summary:
                parts.append(f"<description>{escape(a.summary)}</description>")
            if a.author:
                parts.append(f"<dc:creator>{escape(a.author)}</dc:creator>")
            parts.extend(f"<category>{escape(c)}</category>" for c in a.categories)
            items.append("<item>" + "".join(parts) + "</item>")
        home = self.server.url("/")
        doc = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
            f"<title>{escape(self.title)}</title>"
            f"<link>{escape(home)}</link>"
            f"<description>{escape(self.title)} (test feed)</description>"
            f"<lastBuildDate>{_http_date(self.last_modified)}</lastBuildDate>"
            + "\n".join(items)
            + "</channel></rss>\n"
        )
        return doc.encode("utf-8")

    # -- HTTP ------------------------------------------------------------------------------

    def article_for_path(self, path: str) -> Article | None:
        """The post whose default link has this path, if any."""
        if not path.startswith(self._posts_prefix):
            return None
        number = path[len(self._posts_prefix):]
        if number.isdigit() and 1 <= int(number) <= len(self.articles):
            return self.articles[int(number) - 1]
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve the feed with conditional GET (If-None-Match wins over If-Modified-Since)."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status is not None:
            return web.Response(status=self.status, text=f"status {self.status}\n")
        body = self.render()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Last-Modified": _http_date(self.last_modified),
                   "Cache-Control": "max-age=0"}
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            if etag in tags or "*" in tags:
                return web.Response(status=304, headers=headers)
        elif (ims := request.headers.get("If-Modified-Since")) is not None:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                since = parsedate_to_datetime(ims)
                if since.tzinfo is None:
                    since = since.replace(tzinfo=UTC)
                if since >= self.last_modified:
                    return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers,
                            content_type="application/rss+xml", charset="utf-8")


class FeedServer(LoopbackServer):
    """An aiohttp server for blogs, static bodies and custom handlers, by exact path;
    ``base_url`` is ``http://127.0.0.1:PORT``."""

    _NAME = "FeedServer"

    def __init__(self) -> None:
        super().__init__()
        self.blogs: dict[str, Blog] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self.hit_times: dict[str, list[float]] = collections.defaultdict(list)
        self._handlers: dict[str, Handler] = {}

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.base_url + "/" + path.lstrip("/")

    def add_blog(self, path: str, title: str = "Blog") -> Blog:
        """Publish an RSS 2.0 blog at ``path`` (the server must be started)."""
        self.base_url  # noqa: B018 - fail early: default links need the base URL
        blog = Blog(self, path, title)
        self.blogs[path] = blog
        self._handlers[path] = blog.handle
        return blog

    def serve_bytes(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/rss+xml",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Serve a fixed body at ``path`` (e.g. a corpus file); no conditional GET."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.Response(body=body, status=status, headers=headers)
            response.content_type = content_type
            return response

        self._handlers[path] = handler

    def set_handler(self, path: str, handler: Handler) -> None:
        """Serve ``path`` with a custom aiohttp handler (hostile behaviours)."""
        self._handlers[path] = handler

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        self.hit_times[path].append(time.monotonic())
        handler = self._handlers.get(path)
        if handler is not None:
            return await handler(request)
        for blog in self.blogs.values():
            article = blog.article_for_path(path)
            if article is not None:
                html = (f"<!doctype html><html><head><title>{escape(article.title)}</title>"
                        f"</head><body><h1>{escape(article.title)}</h1>"
                        f"<p>{escape(article.summary)}</p></body></html>")
                return web.Response(text=html, content_type="text/html")
        return web.Response(status=404, text="not found\n")


async def _serve(args: argparse.Namespace) -> None:
    server = FeedServer()
    stop = stop_event()
    await server.start(args.host, args.port)
    blog = server.add_blog("/feed.xml", title=args.title)
    for _ in range(args.initial):
        blog.publish(f"Article {len(blog.articles) + 1}",
                     summary=f"Summary of article {len(blog.articles) + 1}.")
    print(f"FEED_URL={blog.url}", flush=True)
    try:
        while not stop.is_set():
            if args.publish_every <= 0:
                await stop.wait()
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.publish_every)
                break
            article = blog.publish(f"Article {len(blog.articles) + 1}",
                                   summary=f"Summary of article {len(blog.articles) + 1}.")
            print(f"PUBLISHED {article.title} {article.link}", flush=True)
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: one blog at /feed.xml, a new post every N seconds."""
    parser = command_parser("tests.fakes.feed_server", __doc__)
    parser.add_argument("--publish-every", type=float, default=10.0,
                        help="seconds between new articles (0 = never)")
    parser.add_argument("--initial", type=int, default=0, help="articles published at start")
    parser.add_argument("--title", default="Demo blog")
    args = parser.parse_args(argv)
    run(_serve(args))


if __name__ == "__main__":
    main()
