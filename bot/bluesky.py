"""The Bluesky client: each :class:`Delivery` becomes one ``app.bsky.feed.post`` record on the
account's PDS, with a clickable link (a link facet) and a link card (an external embed with
the article's title, description and thumbnail), and comes back as an :class:`Outcome`.

Why the ``atproto`` SDK (MarshalX/atproto, 0.0.73 checked) and what it does not do for us.
Its ``AsyncClient`` fits: it takes any service URL (our fake PDS on 127.0.0.1 as much as
bsky.social, and then follows the PDS named in the session's DID document), takes httpx
options (our timeout, no proxy from the environment, like our aiohttp session; every call is
also inside ``asyncio.timeout``), raises errors that carry the status, the ``ratelimit-*``
headers and the XRPC ``error``/``message``, logs nothing itself (httpx logs one INFO line per
request, URL and status; httpcore's DEBUG lines name no request header or body: no password,
no token), refreshes the session before the access JWT expires, and its pydantic models check
what we send and what the PDS answers. Wheels for 3.11–3.13 (and 3.14); the cost is 19 more
packages (pydantic, httpx, cryptography, libipld, dnspython, websockets, zstandard, …; ~70 MB)
and ~0.5 s of import (~590 modules): import this module only when Bluesky is configured.
Its gaps, worked around here: (1) it does not refresh when the PDS answers ``ExpiredToken``
and its refresh is private (``_refresh_and_set_session``; if it goes, we log in again);
(2) a connection closed before the answer comes out as a bare ``httpx.RemoteProtocolError``,
not as its own ``NetworkError``; (3) its ``upload_blob`` hands bytes to httpx's deprecated
``data=`` (a DeprecationWarning, an error under our pytest settings), so blobs go through
``invoke_procedure(content=…)``; (4) ``AsyncClient`` opens an httpx pool: :meth:`aclose`.

Exactly once: the record key (rkey) is the post's ``Delivery.key``, chosen and committed
before the first attempt. When an earlier attempt may have landed (``attempts > 0``), or when
createRecord answers 5xx (a PDS answers a createRecord on an existing rkey with a bare 500),
getRecord decides: the record is there → ``duplicate`` (settled), not there → create / retry.

The session (access and refresh JWTs) lives in memory only, never in the database, a log line,
an outcome's reason or a repr; the app password likewise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import httpx
import pydantic
from atproto_client import AsyncClient, models
from atproto_client.client.session import Session, SessionEvent
from atproto_client.exceptions import (
    InvokeTimeoutError,
    ModelError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
)
from atproto_client.models.blob_ref import BlobRef
from atproto_client.models.common import XrpcError
from atproto_client.models.utils import get_response_model
from atproto_client.request import AsyncRequest
from atproto_core.exceptions import AtProtocolError

from bot.delivery import RETRY_4XX, Delivery, Outcome, OutcomeKind
from bot.networks import display_link
from bot.text import non_json_reason, page_excerpt
from bot.times import epoch_header, first_future, retry_after

__all__ = ["POST_COLLECTION", "BlueskyClient", "link_facet", "rate_limit_reset"]

log = logging.getLogger(__name__)

POST_COLLECTION = "app.bsky.feed.post"
THUMB_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
_TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
# 404/405/501: the endpoint is not where BLUESKY_SERVICE_URL says (a proxy, a setting to fix);
# 408/409/425: "try again" (409: a concurrent write to the repo)
T = TypeVar("T")


def rate_limit_reset(headers: Any, now: float) -> float | None:
    """When a 429's wall ends, as epoch seconds: ``ratelimit-reset`` (epoch seconds), else
    ``Retry-After`` (seconds or an HTTP date); None when neither names a time in the future."""
    return first_future(now, (epoch_header(headers, "ratelimit-reset"),
                              retry_after(headers.get("retry-after"), now)))


def link_facet(text: str, link: str) -> dict[str, Any] | None:
    """The ``app.bsky.richtext.facet`` that makes ``link`` clickable in ``text``: over the last
    place the text shows it as :func:`~bot.networks.display_link` writes it (else the full
    link), its range in **bytes of UTF-8** as the lexicon wants. None when it is not there."""
    shown = display_link(link)
    start = text.rfind(shown)
    if start < 0 and shown != link:
        shown, start = link, text.rfind(link)
    if start < 0 or not shown:
        return None
    byte_start = len(text[:start].encode("utf-8"))
    return {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": byte_start, "byteEnd": byte_start + len(shown.encode("utf-8"))},
        "features": [{"$type": "app.bsky.richtext.facet#link", "uri": link}],
    }


def _sniff(data: bytes) -> str | None:
    """The image type the bytes are, of those a card thumbnail may be."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _body_summary(content: object) -> str:
    """An error body that is not XRPC's JSON, for a reason: an HTML page's title, or its start."""
    raw = content if isinstance(content, bytes) else str(content).encode()
    said = page_excerpt(raw)
    return said if said.startswith("HTML page") else non_json_reason(raw)


def _xrpc_error(exc: RequestErrorBase) -> str | None:
    content = exc.response.content if exc.response is not None else None
    return content.error if isinstance(content, XrpcError) else None


def _detail(exc: RequestErrorBase) -> str:
    """``HTTP 400 InvalidRequest: <the PDS's message>``."""
    if exc.response is None:
        return "no answer"
    content = exc.response.content
    if isinstance(content, XrpcError):
        said = f"{content.error}: {content.message}" if content.message else content.error
    else:
        said = _body_summary(content)
    return f"HTTP {exc.response.status_code} {said}"


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, RequestErrorBase) and exc.response is not None:
        return exc.response.status_code
    return None


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, RequestErrorBase) and exc.__cause__ else exc
    text = str(cause)
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


class _LoginFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _SkipThumb(Exception):
    pass


class BlueskyClient:
    """Posts a :class:`Delivery` to Bluesky and says what came of it. Never raises for an
    answer from the PDS (nor for the lack of one): every call of :meth:`send` ends in an
    :class:`Outcome` within ``timeout`` seconds.

    ``service_url`` is the account's PDS (or bsky.social, which hands over to it); ``session``
    (aiohttp) fetches card thumbnails from the blog; the PDS calls go through atproto's httpx
    client, closed by :meth:`aclose`. ``clock`` (epoch seconds) stamps ``createdAt`` and
    judges rate-limit resets. ``env_suffix`` names the settings in :attr:`broken_help`.
    The card is ``delivery.card`` (none without it); its image is fetched at most
    ``max_thumb_bytes`` (JPEG, PNG, WebP or GIF), else the card goes without it.
    """

    def __init__(self, *, handle: str, app_password: str,
                 service_url: str = "https://bsky.social", session: aiohttp.ClientSession,
                 timeout: float = 30.0, clock: Callable[[], float] | None = None,
                 env_suffix: str = "", max_thumb_bytes: int = 1_000_000) -> None:
        self.handle = handle
        self.service_url = service_url.rstrip("/")
        self.session = session
        self.timeout = timeout
        self.thumb_timeout = min(10.0, timeout / 3)
        self.clock = clock or time.time
        self.max_thumb_bytes = max_thumb_bytes
        self.broken_help: dict[OutcomeKind, str] = {
            OutcomeKind.AUTH: f"Bluesky refused the login: check BLUESKY_HANDLE{env_suffix} (the "
            f"account's handle, e.g. alice.bsky.social, or its DID) and "
            f"BLUESKY_APP_PASSWORD{env_suffix}: an app password made in Settings → Privacy and "
            "security → App passwords, never the account's own password; and "
            f"BLUESKY_SERVICE_URL{env_suffix}: the account's PDS (https://bsky.social for an "
            "account hosted by Bluesky)",
        }
        self._password = app_password
        self._client: AsyncClient | None = None
        self._did: str | None = None
        self._generation = 0  # bumped at each new or refreshed session
        self._session_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"BlueskyClient(handle={self.handle!r}, service_url={self.service_url!r})"

    async def aclose(self) -> None:
        """Close atproto's HTTP connection pool (the aiohttp session is the caller's)."""
        client, self._client, self._did = self._client, None, None
        if client is not None:
            await client.request.close()

    async def __aenter__(self) -> BlueskyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the one public call ------------------------------------------------------------

    async def check(self) -> Outcome | None:
        """At start-up: log in (the session is needed for the first post anyway); an AUTH
        outcome when the PDS refuses the handle and app password, None otherwise (logged in,
        or no clear answer: the first post finds out). Never raises."""
        try:
            async with asyncio.timeout(self.timeout):
                await self._ensure_session()
        except _LoginFailed as exc:
            outcome = self._outcome(exc.error, login=True)
            return outcome if outcome.kind is OutcomeKind.AUTH else None
        except (TimeoutError, AtProtocolError, httpx.HTTPError, pydantic.ValidationError,
                OSError, aiohttp.ClientError):
            return None
        return None

    async def send(self, delivery: Delivery) -> Outcome:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._send(delivery)
        except TimeoutError:
            return Outcome(OutcomeKind.RETRY,
                           reason=f"no answer from Bluesky within {self.timeout:g} s")
        except _LoginFailed as exc:
            return self._outcome(exc.error, login=True)
        except (AtProtocolError, httpx.HTTPError, pydantic.ValidationError, OSError,
                aiohttp.ClientError) as exc:
            return self._outcome(exc)

    async def _send(self, delivery: Delivery) -> Outcome:
        try:
            record = self._record(delivery)
        except (pydantic.ValidationError, ModelError, UnicodeError) as exc:
            said = " ".join(str(exc).split())[:200]
            return Outcome(OutcomeKind.FAILED, reason=f"not a valid Bluesky post: {said}")
        did = await self._ensure_session()
        rkey = delivery.key or None
        if rkey is not None and delivery.attempts > 0:
            uri = await self._find(did, rkey)
            if uri is not None:
                return self._found(uri, rkey)
        thumb = await self._thumb(delivery) if record.embed is not None else None
        if thumb is not None:
            assert isinstance(record.embed, models.AppBskyEmbedExternal.Main)
            external = record.embed.external.model_copy(update={"thumb": thumb})
            record = record.model_copy(
                update={"embed": models.AppBskyEmbedExternal.Main(external=external)})
        data = models.ComAtprotoRepoCreateRecord.Data(repo=did, collection=POST_COLLECTION,
                                                      rkey=rkey, record=record)
        try:
            created = await self._call(
                lambda: self._atproto().com.atproto.repo.create_record(data))
        except RequestErrorBase as exc:
            status = _status(exc)
            if rkey is None or status is None or status < 500:
                raise
            # a bare 5xx: maybe the record is there (an existing rkey answers 500 today)
            uri = await self._find(did, rkey)
            if uri is not None:
                return self._found(uri, rkey)
            return Outcome(OutcomeKind.RETRY, reason=_detail(exc), status=status)
        return Outcome(OutcomeKind.SENT, tweet_id=created.uri, status=200)

    @staticmethod
    def _found(uri: str, rkey: str) -> Outcome:
        return Outcome(OutcomeKind.DUPLICATE, tweet_id=uri,
                       reason=f"already on Bluesky (record {rkey} exists)")

    # -- the record ------------------------------------------------------------------------

    def _record(self, delivery: Delivery) -> models.AppBskyFeedPost.Record:
        now = datetime.fromtimestamp(self.clock(), UTC)
        facets = None
        embed = None
        if delivery.link:
            facet = link_facet(delivery.text, delivery.link)
            if facet is not None:
                facets = [models.AppBskyRichtextFacet.Main.model_validate(facet)]
            card = delivery.card
            if card is not None:
                embed = models.AppBskyEmbedExternal.Main(
                    external=models.AppBskyEmbedExternal.External(
                        uri=delivery.link, title=card.title, description=card.description))
        return models.AppBskyFeedPost.Record(
            text=delivery.text, created_at=now.isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"), facets=facets, embed=embed)

    async def _thumb(self, delivery: Delivery) -> BlobRef | None:
        """The card's image uploaded as a blob; None (and one INFO line) when it cannot be."""
        url = delivery.card.image if delivery.card is not None else None
        if not url or urlsplit(url).scheme not in ("http", "https"):
            return None
        try:
            try:
                async with asyncio.timeout(self.thumb_timeout):
                    data, mime = await self._fetch_image(url)
            except TimeoutError:
                raise _SkipThumb(f"no image within {self.thumb_timeout:g} s") from None
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                raise _SkipThumb(f"fetch failed: {type(exc).__name__}") from exc
            try:
                uploaded = await self._call(lambda: self._upload(data, mime))
            except RequestErrorBase as exc:
                if exc.response is not None:
                    raise _SkipThumb(f"uploadBlob: {_detail(exc)}") from exc
                raise _SkipThumb(f"uploadBlob: connection error: {_cause(exc)}") from exc
            except (httpx.HTTPError, AtProtocolError) as exc:
                raise _SkipThumb(f"uploadBlob: {type(exc).__name__}") from exc
        except _SkipThumb as exc:
            log.info("bluesky_thumb_skipped post_id=%s image=%s reason=%s",
                     delivery.post_id, url, exc)
            return None
        return uploaded.blob

    async def _fetch_image(self, url: str) -> tuple[bytes, str]:
        timeout = aiohttp.ClientTimeout(total=self.thumb_timeout)
        async with self.session.get(url, timeout=timeout,
                                    headers={"Accept": ", ".join(sorted(THUMB_TYPES))}) as resp:
            if resp.status != 200:
                raise _SkipThumb(f"HTTP {resp.status}")
            declared = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if declared not in THUMB_TYPES:
                raise _SkipThumb(f"not an image: {declared or 'no Content-Type'}")
            too_large = f"larger than {self.max_thumb_bytes} bytes"
            if resp.content_length is not None and resp.content_length > self.max_thumb_bytes:
                resp.close()  # never read what will not be used
                raise _SkipThumb(too_large)
            body = bytearray()
            async for chunk in resp.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > self.max_thumb_bytes:
                    resp.close()
                    raise _SkipThumb(too_large)
        mime = _sniff(bytes(body[:16]))
        if mime is None:
            raise _SkipThumb(f"not an image: the bytes are no {declared}")
        return bytes(body), mime

    async def _upload(self, data: bytes, mime: str) -> models.ComAtprotoRepoUploadBlob.Response:
        response = await self._atproto().invoke_procedure(
            "com.atproto.repo.uploadBlob", content=data, headers={"Content-Type": mime},
            output_encoding="application/json")
        return get_response_model(response, models.ComAtprotoRepoUploadBlob.Response)

    async def _find(self, did: str, rkey: str) -> str | None:
        """The record's at:// URI when the repo has it; None on ``RecordNotFound``."""
        params = models.ComAtprotoRepoGetRecord.Params(repo=did, collection=POST_COLLECTION,
                                                       rkey=rkey)
        try:
            response = await self._call(lambda: self._atproto().invoke_query(
                "com.atproto.repo.getRecord", params=params, output_encoding="application/json"))
        except RequestErrorBase as exc:
            if _status(exc) == 400 and _xrpc_error(exc) == "RecordNotFound":
                return None
            raise
        content = response.content
        uri = content.get("uri") if isinstance(content, dict) else None
        if not isinstance(uri, str) or not uri.startswith("at://"):
            raise ModelError("getRecord answered without a record URI")
        return uri

    # -- the session -------------------------------------------------------------------------

    def _atproto(self) -> AsyncClient:
        if self._client is None:
            request = AsyncRequest(timeout=httpx.Timeout(self.timeout), trust_env=False)
            self._client = AsyncClient(base_url=self.service_url, request=request)
            self._client.on_session_change(self._session_changed)
        return self._client

    def _session_changed(self, event: SessionEvent, session: Session) -> None:
        # the session carries the JWTs: keep the DID, log only names
        self._did = session.did
        self._generation += 1
        log.info("bluesky_session_%s handle=%s did=%s",
                 "refreshed" if event is SessionEvent.REFRESH else "created",
                 session.handle, session.did)

    async def _ensure_session(self) -> str:
        if self._did is None:
            async with self._session_lock:
                if self._did is None:
                    await self._login()
        assert self._did is not None
        return self._did

    async def _login(self) -> None:
        try:
            await self._atproto().login(self.handle, self._password, fetch_bsky_profile=False)
        except (AtProtocolError, httpx.HTTPError, pydantic.ValidationError) as exc:
            self._did = None
            raise _LoginFailed(exc) from None  # `from None`: the chain holds the request

    async def _renew(self, generation: int) -> None:
        """After the PDS refused the access token: refreshSession, else createSession."""
        async with self._session_lock:
            if generation != self._generation:
                return  # another call renewed the session meanwhile
            refresh = getattr(self._atproto(), "_refresh_and_set_session", None)
            if refresh is not None and self._did is not None:
                try:
                    await refresh()
                    return
                except RequestErrorBase as exc:
                    if _status(exc) not in (400, 401):
                        raise  # 429, 5xx, no answer: the outcome says so
                    log.info("bluesky_refresh_refused handle=%s reason=%s",
                             self.handle, _detail(exc))
                except (ModelError, pydantic.ValidationError):
                    pass
            await self._login()

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        """``make()``; when the PDS refuses the access token, renew the session once and
        ``make()`` again (nothing was written: a refused call writes nothing)."""
        generation = self._generation
        try:
            return await make()
        except RequestErrorBase as exc:
            status = _status(exc)
            if not (status == 401 or (status == 400 and _xrpc_error(exc) in _TOKEN_ERRORS)):
                raise
        await self._renew(generation)
        return await make()

    # -- answers to outcomes ------------------------------------------------------------------

    def _outcome(self, exc: BaseException, *, login: bool = False) -> Outcome:
        if isinstance(exc, RequestErrorBase) and exc.response is not None:
            status = exc.response.status_code
            reason = _detail(exc)
            if login:
                reason = f"createSession: {reason}"
            if isinstance(exc, RateLimitExceededError) or status == 429:
                return Outcome(OutcomeKind.RATE_LIMITED, reason=reason, status=429,
                               retry_at=rate_limit_reset(exc.response.headers, self.clock()))
            if status in (401, 403) or _xrpc_error(exc) in _TOKEN_ERRORS:
                return Outcome(OutcomeKind.AUTH, reason=reason, status=status)
            if status >= 500 or status in RETRY_4XX or not 400 <= status < 500:
                return Outcome(OutcomeKind.RETRY, reason=reason, status=status)
            if login:  # a 400 to the login: the handle or the settings, not this post
                return Outcome(OutcomeKind.AUTH, reason=reason, status=status)
            return Outcome(OutcomeKind.FAILED, reason=reason, status=status)
        if isinstance(exc, InvokeTimeoutError | httpx.TimeoutException):
            return Outcome(OutcomeKind.RETRY,
                           reason=f"no answer from Bluesky within {self.timeout:g} s")
        if isinstance(exc, NetworkError | httpx.HTTPError | OSError | aiohttp.ClientError):
            return Outcome(OutcomeKind.RETRY, reason=f"connection error: {_cause(exc)}")
        # ModelError, a pydantic ValidationError, LoginRequiredError: not the PDS's shape
        return Outcome(OutcomeKind.RETRY,
                       reason=f"unreadable answer from Bluesky: {type(exc).__name__}")
