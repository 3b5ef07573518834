"""Fetching feeds over HTTP: one shared aiohttp session, conditional GET, a total timeout,
a cap on the bytes read (counted after decompression), per-host and global concurrency.

:meth:`Fetcher.fetch` returns a :class:`FetchResult` (200 with a body, or 304) or raises a
:class:`bot.errors.FeedError` subclass whose message says why in plain words; parsing happens
elsewhere (:mod:`bot.parse`), off the event loop.

What a hostile or broken server gets:

* **No answer, or a trickle.** ``timeout`` bounds the whole fetch (connect, headers, body),
  so a server sending a byte a second is cut off like one that never answers:
  "timed out after N s". A fetch waiting for a free slot is not timed yet.
* **Too much.** A declared ``Content-Length`` over ``max_bytes`` is refused before reading;
  otherwise the body is read in chunks and the fetch stops as soon as more than ``max_bytes``
  bytes *after decompression* arrived: "too large". aiohttp (3.14) inflates a gzip/deflate
  body at most 256 KiB per compressed chunk, so a gzip bomb is stopped after a few MiB,
  never inflated whole. The connection is then closed, not returned to the pool.
* **Status codes.** 304 is a result; 410 raises :class:`FeedGoneError`; any other non-200
  raises :class:`FeedFetchError` with ``status`` set ("HTTP 404 Not Found"), and for 429/503
  ``retry_after`` from ``Retry-After`` (seconds or an HTTP date). Malformed HTTP (a bad status
  line, oversized headers, a body cut short) is an error with ``status=None``.
* **Redirects** are followed (at most :data:`MAX_REDIRECTS`); ``final_url`` is set only when
  *every* hop was permanent (301/308), so the caller can remember the feed's new address.
  More hops than that (a loop) is "too many redirects (a redirect loop?)".
* **Politeness.** At most ``max_per_host`` fetches per host name at once, and at most
  ``max_concurrent`` in all. A fetch first waits for its host's slot, then for a global one,
  so feeds queued behind one slow host never hold global slots other hosts need.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot import __version__
from bot.errors import FeedFetchError, FeedGoneError
from bot.text import clip
from bot.times import retry_after

log = logging.getLogger(__name__)

USER_AGENT = f"feed-tweeter/{__version__} (+https://github.com/feed-tweeter/feed-tweeter)"
ACCEPT = ("application/atom+xml, application/rss+xml, application/rdf+xml, "
          "application/feed+json, application/json;q=0.9, application/xml;q=0.9, "
          "text/xml;q=0.8, */*;q=0.5")
MAX_REDIRECTS = 5
READ_CHUNK = 64 * 1024
_PERMANENT = (301, 308)
_MESSAGE_MAX = 200  # characters of a server-provided text kept in an error message
_message = functools.partial(clip, width=_MESSAGE_MAX)  # a server's words, on one line


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int  # 200 or 304
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    final_url: str | None = None  # the new URL after permanent redirects only


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    when = retry_after(value, now)
    return None if when is None else when - now


class _HostSlots:
    """At most ``limit`` holders per host at once; a host's semaphore lives while in use."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots: dict[str, list[Any]] = {}  # host -> [semaphore, users]

    async def acquire(self, host: str) -> None:
        slot = self._slots.get(host)
        if slot is None:
            slot = self._slots[host] = [asyncio.Semaphore(self.limit), 0]
        slot[1] += 1
        try:
            await slot[0].acquire()
        except BaseException:
            self._leave(host, slot)
            raise

    def release(self, host: str) -> None:
        slot = self._slots[host]
        slot[0].release()
        self._leave(host, slot)

    def _leave(self, host: str, slot: list[Any]) -> None:
        slot[1] -= 1
        if slot[1] == 0:
            del self._slots[host]

    def __len__(self) -> int:
        return len(self._slots)


@functools.lru_cache(maxsize=100_000)
def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class Fetcher:
    def __init__(self, session: aiohttp.ClientSession, *, timeout: float = 30.0,
                 max_bytes: int = 10 * 1024 * 1024, max_concurrent: int = 20,
                 max_per_host: int = 2) -> None:
        self.session = session
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._global = asyncio.Semaphore(max_concurrent)
        self._per_host = _HostSlots(max_per_host)

    async def fetch(self, url: str, *, etag: str | None = None,
                    last_modified: str | None = None) -> FetchResult:
        host = _host(url)
        await self._per_host.acquire(host)
        try:
            async with self._global:
                try:
                    async with asyncio.timeout(self.timeout):
                        return await self._fetch(url, etag, last_modified)
                except TimeoutError:  # ours, or aiohttp's connect timeout (a TimeoutError too)
                    raise FeedFetchError(f"timed out after {self.timeout:g} s "
                                         "(FEED_TIMEOUT)") from None
                except aiohttp.TooManyRedirects as exc:
                    hops = [clip(str(r.url), 100) for r in exc.history][:3]
                    raise FeedFetchError(f"too many redirects (a redirect loop?): more than "
                                         f"{MAX_REDIRECTS} hops: {' -> '.join(hops)} ...") from None
                except aiohttp.ClientResponseError as exc:
                    # Never a real status (we do not raise_for_status): the response could not
                    # be read as HTTP at all, and aiohttp labels that 400.
                    raise FeedFetchError(
                        f"invalid HTTP response: {_message(exc.message)}") from None
                except aiohttp.ClientConnectorError as exc:
                    raise FeedFetchError(_connect_message(exc)) from None
                except aiohttp.ClientPayloadError as exc:
                    raise FeedFetchError(f"response body cut short or undecodable: "
                                         f"{_message(str(exc))}") from None
                except aiohttp.ServerDisconnectedError:
                    raise FeedFetchError("the server closed the connection without "
                                         "answering") from None
                except (aiohttp.ClientError, OSError, ValueError) as exc:
                    raise FeedFetchError(f"{type(exc).__name__}: {_message(str(exc))}") from None
        finally:
            self._per_host.release(host)

    async def _fetch(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        async with self.session.get(url, headers=headers, allow_redirects=True,
                                    max_redirects=MAX_REDIRECTS) as resp:
            final_url = None
            if resp.history and all(r.status in _PERMANENT for r in resp.history):
                final_url = str(resp.url)
            if resp.status == 304:
                return FetchResult(304, etag=resp.headers.get("ETag", etag),
                                   last_modified=resp.headers.get("Last-Modified", last_modified),
                                   final_url=final_url)
            if resp.status == 410:
                raise FeedGoneError("HTTP 410 Gone: the feed was removed", status=410)
            if resp.status != 200:
                retry_after = None
                if resp.status in (429, 503):
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"), time.time())
                reason = clip(resp.reason or "", 60)
                raise FeedFetchError(f"HTTP {resp.status} {reason}".strip(),
                                     status=resp.status, retry_after=retry_after)
            declared = resp.content_length
            encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
            if declared is not None and declared > self.max_bytes and encoding == "identity":
                resp.close()
                raise FeedFetchError(f"feed too large: {declared} bytes declared, the cap is "
                                     f"MAX_FEED_BYTES={self.max_bytes}", status=200)
            body = bytearray()
            async for chunk in resp.content.iter_chunked(READ_CHUNK):
                if len(body) + len(chunk) > self.max_bytes:
                    resp.close()  # drop the connection: the rest is never read
                    raise FeedFetchError(f"feed too large: more than MAX_FEED_BYTES="
                                         f"{self.max_bytes} bytes (after decompression)",
                                         status=200)
                body += chunk
            return FetchResult(200, bytes(body), resp.headers.get("Content-Type"),
                               resp.headers.get("ETag"), resp.headers.get("Last-Modified"),
                               final_url)


def _connect_message(exc: aiohttp.ClientConnectorError) -> str:
    where = f"{exc.host}:{exc.port}"
    os_error = exc.os_error
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"cannot connect to {where}: TLS error: {_message(str(exc))}"
    if os_error.errno is not None:
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            why = os_error.strerror or str(os_error)
        else:
            why = os.strerror(os_error.errno)
        return f"cannot connect to {where}: {why.lower()}"
    return f"cannot connect to {where}: {_message(str(os_error) or type(os_error).__name__)}"
