"""A loopback fake of a Bluesky PDS (the XRPC endpoints the bot uses), with fault injection.

In-process use (async tests)::

    async with FakePDS(handle="alice.test", app_password="abcd-efgh-ijkl-mnop") as pds:
        ...  # point the client at pds.base_url (it adds "/xrpc")
        pds.faults.append(Fault.rate_limited(reset=time.time() + 60))  # the next createRecord
        records = await pds.wait_for_records(1, timeout=5)

Standalone use (subprocess tests, the demo)::

    python -m tests.fakes.fake_bluesky --port 0 --handle H --app-password P [--delay SECONDS]

prints ``FAKE_BLUESKY_URL=http://127.0.0.1:PORT`` (flushed), serves until SIGTERM/SIGINT, then
prints ``LEDGER <json list of texts>``. ``GET /_ledger`` answers the same list over HTTP,
``GET /_records`` the records in full, ``GET /_requests`` the calls as answered, and ``POST
/_control`` steers the fake (see :meth:`FakePDS._control`; its answer includes ``in_flight``).

Endpoints (``/xrpc/<nsid>``), answering in the shapes the PDS does (and that the ``atproto``
SDK's models accept): ``com.atproto.server.createSession`` (identifier = the handle or DID,
password = the app password), ``com.atproto.server.refreshSession`` (Bearer refresh JWT; the
refresh token rotates, the old one is revoked), ``com.atproto.server.getSession``,
``app.bsky.actor.getProfile``, ``com.atproto.repo.createRecord`` / ``putRecord`` /
``getRecord`` and ``com.atproto.repo.uploadBlob``. Errors are XRPC bodies,
``{"error": "<Name>", "message": "..."}``.

What the fake checks, like a PDS does: the access JWT on every call that needs one (HMAC-signed
here; ``exp`` against the fake's clock, ``access_lifetime`` seconds after issue; an expired one
answers ``expired_token_status`` (400, as the reference PDS does) ``ExpiredToken``); a post
record's ``$type``, ``createdAt``, its text (at most 300 graphemes and 3,000 bytes of UTF-8),
its facets' byte ranges (within the text's UTF-8), an external embed's fields and that its
thumb is a blob uploaded here (an image of at most 1,000,000 bytes); the rkey of a post is a
TID. A createRecord on an rkey that exists answers 500 ``InternalServerError``, as today's PDS
does (a unique-constraint failure in its database), never a clear "already exists".

Faults (:class:`Fault`, the same API as ``tests.fakes.fake_x.Fault`` with XRPC bodies and
``ratelimit-*`` headers) are consumed one per createRecord (``faults``) or one per
createSession (``login_faults``).

The fake also serves images for link-card thumbnails: :meth:`FakePDS.add_image`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import itertools
import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

import regex
from aiohttp import web

from tests.fakes import fake_x
from tests.fakes.base import JSON, FakeService, command_parser, run_fake

__all__ = ["FakePDS", "Fault", "Image", "PostRecord", "RequestRecord", "xrpc_error"]

POST_COLLECTION = "app.bsky.feed.post"
MAX_GRAPHEMES = 300
MAX_TEXT_BYTES = 3000
MAX_THUMB_BYTES = 1_000_000  # app.bsky.embed.external#external.thumb maxSize
TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
NSID = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+){2,}")
_CLUSTER = regex.compile(r"\X")
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def xrpc_error(error: str, message: str) -> dict[str, str]:
    """An XRPC error body."""
    return {"error": error, "message": message}


RATE_LIMITED_BODY = xrpc_error("RateLimitExceeded", "Rate Limit Exceeded")
INTERNAL_ERROR_BODY = xrpc_error("InternalServerError", "Internal Server Error")
BAD_LOGIN_BODY = xrpc_error("AuthenticationRequired", "Invalid identifier or password")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cid_for(data: bytes, codec: int = 0x55) -> str:
    """A CIDv1 (sha2-256) of ``data`` in base32, as a PDS writes it: codec 0x55 (raw) for
    blobs ("bafkrei…"), 0x71 (dag-cbor) for records ("bafyrei…"; here over the JSON)."""
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    bits = "".join(f"{byte:08b}" for byte in raw)
    bits += "0" * (-len(bits) % 5)
    return "b" + "".join(_B32[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5))


def sniff(data: bytes) -> str | None:
    """The image type of ``data`` from its first bytes, as the PDS finds a blob's type."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class Fault(fake_x.Fault):
    """One injected misbehaviour, consumed by one createRecord (``FakePDS.faults``) or one
    createSession (``FakePDS.login_faults``). ``cut_before``, ``cut_after``, ``slow`` and
    ``server_error_html`` are fake_x's; the rest answer XRPC bodies. A JSON description for
    ``POST /_control`` is ``{"kind": "<class method name>", **its keyword arguments}``."""

    _JSON_TYPE: ClassVar[str] = JSON
    _KINDS: ClassVar[tuple[str, ...]] = (
        "status", "rate_limited", "bad_request", "server_error", "server_error_html",
        "expired_token", "unauthorized", "cut_before", "cut_after", "slow",
    )

    @classmethod
    def rate_limited(  # type: ignore[override]
        cls,
        reset: float | None = None,
        retry_after: float | None = None,
        *,
        limit: int = 5000,
        window: int = 3600,
    ) -> Self:
        """A 429 ``RateLimitExceeded``; ``ratelimit-limit/-remaining/-policy`` always, and
        ``ratelimit-reset`` (epoch seconds, rounded up) and ``retry-after`` when given."""
        headers = {"ratelimit-limit": str(limit), "ratelimit-remaining": "0",
                   "ratelimit-policy": f"{limit};w={window}"}
        if reset is not None:
            headers["ratelimit-reset"] = str(math.ceil(reset))
        if retry_after is not None:
            headers["retry-after"] = str(math.ceil(retry_after))
        return cls.status(429, dict(RATE_LIMITED_BODY), headers, JSON)

    @classmethod
    def bad_request(  # type: ignore[override]
        cls, message: str = "Invalid app.bsky.feed.post record: Record/text must be a string",
        error: str = "InvalidRequest",
    ) -> Self:
        """A 400 with an XRPC body."""
        return cls.status(400, xrpc_error(error, message), None, JSON)

    @classmethod
    def server_error(cls, code: int = 500) -> Self:
        """A 5xx with the PDS's own XRPC body."""
        return cls.status(code, dict(INTERNAL_ERROR_BODY), None, JSON)

    @classmethod
    def expired_token(cls, code: int = 400) -> Self:
        """The answer to an expired access token (without it being expired)."""
        return cls.status(code, xrpc_error("ExpiredToken", "Token has expired"), None, JSON)

    @classmethod
    def unauthorized(cls, message: str = "Token has been revoked") -> Self:
        """A 401 ``AuthenticationRequired``."""
        return cls.status(401, xrpc_error("AuthenticationRequired", message), None, JSON)


@dataclass(frozen=True, slots=True)
class PostRecord:
    """One record in the repo (any collection; the bot writes ``app.bsky.feed.post``)."""

    rkey: str
    uri: str
    cid: str
    collection: str
    value: dict[str, Any]
    at: float  # FakePDS clock time of acceptance

    @property
    def text(self) -> str:
        text = self.value.get("text")
        return text if isinstance(text, str) else ""


@dataclass(frozen=True, slots=True)
class Blob:
    """One uploaded blob."""

    cid: str
    mime_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def ref(self) -> dict[str, Any]:
        return {"$type": "blob", "ref": {"$link": self.cid}, "mimeType": self.mime_type,
                "size": self.size}


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One XRPC call as received and answered."""

    time: float  # FakePDS clock time of arrival
    nsid: str
    status: int | None  # None when the connection was cut
    fault: str | None = None
    error: str | None = None  # the XRPC error name answered, if any


@dataclass(frozen=True, slots=True)
class Image:
    """An image the fake serves at ``/img/<name>``: ``body`` sent ``repeat`` times (when
    ``repeat`` > 1, chunked, without a Content-Length), after ``delay`` seconds."""

    body: bytes
    content_type: str = "image/png"
    status: int = 200
    delay: float = 0.0
    repeat: int = 1


class _Answer(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


@dataclass
class _Token:
    did: str
    scope: str
    exp: float
    jti: str = ""


class FakePDS(FakeService[Fault, RequestRecord]):
    """The fake PDS. See the module docstring; all attributes may be changed at any time.
    ``base_url`` (``http://127.0.0.1:PORT``) is the service URL; XRPC is under ``/xrpc/``.

    Order of handling for each createRecord: record arrival, pop one fault (or draw a random
    one when ``fail_ratio`` > 0), sleep ``delay`` (+ a ``slow`` fault's seconds), apply a
    ``status``/``cut_before`` fault; otherwise check the access token, validate, 500 for an
    existing rkey, else store (200, or ``cut_after``: store, then cut the connection).
    """

    _NAME = "FakePDS"
    _fault_type = Fault
    _RECENT = ("nsid", "status", "error", "fault")
    _CALLS = "calls"

    def __init__(
        self,
        *,
        handle: str = "alice.test",
        app_password: str = "abcd-efgh-ijkl-mnop",
        did: str | None = None,
        delay: float = 0.0,
        clock: Callable[[], float] = time.time,
        access_lifetime: float = 2 * 3600,
        refresh_lifetime: float = 90 * 86400,
        expired_token_status: int = 400,
        max_blob_bytes: int = 50_000_000,
        fail_ratio: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(delay=delay, clock=clock, fail_ratio=fail_ratio, rng=rng)
        self.handle = handle
        self.app_password = app_password
        self.did = did or "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.expired_token_status = expired_token_status
        self.max_blob_bytes = max_blob_bytes

        self.records: list[PostRecord] = []  # in order of acceptance
        self.blobs: list[Blob] = []
        # requests: every XRPC call, appended as it finishes; faults: one per createRecord
        self.login_faults: collections.deque[Fault] = collections.deque()  # per createSession
        self.images: dict[str, Image] = {}
        self.image_bytes_sent: collections.Counter[str] = collections.Counter()
        self.posts_in_flight = 0  # of the XRPC calls in_flight, createRecord calls
        self.issued_tokens: list[str] = []  # every JWT handed out (tests: none in any log)
        self._secret = random.randbytes(32)
        self._jti = itertools.count(1)
        self._revoked: set[str] = set()  # refresh jtis rotated away or revoked
        self._expired: set[str] = set()  # access tokens made to answer ExpiredToken

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=max(self.max_blob_bytes, 1 << 20) + (1 << 20))
        app.router.add_route("*", "/xrpc/{nsid}", self._xrpc)
        app.router.add_get("/img/{name}", self._image)
        app.router.add_get("/_ledger", self._get_ledger)
        app.router.add_get("/_records", self._get_records)
        app.router.add_get("/_requests", self._get_requests)
        app.router.add_post("/_control", self._control)
        return app

    # -- inspection and steering ---------------------------------------------------------

    def texts(self) -> list[str]:
        """The accepted post texts, in order."""
        return [r.text for r in self.records if r.collection == POST_COLLECTION]

    def record(self, rkey: str, collection: str = POST_COLLECTION) -> PostRecord | None:
        for rec in self.records:
            if rec.rkey == rkey and rec.collection == collection:
                return rec
        return None

    def calls(self, nsid: str, status: int | None = 200) -> int:
        """How many calls of ``nsid`` were answered ``status`` (any status: None)."""
        return sum(1 for r in self.requests if r.nsid == nsid
                   and (status is None or r.status == status))

    @property
    def sessions_created(self) -> int:
        return self.calls("com.atproto.server.createSession")

    @property
    def sessions_refreshed(self) -> int:
        return self.calls("com.atproto.server.refreshSession")

    def reject_credentials(self, flag: bool) -> None:
        """While True the app password is revoked: createSession answers 401, refreshSession
        400 ``ExpiredToken`` ("revoked"), and every call with an access token 401."""
        super().reject_credentials(flag)
        if flag:
            self.revoke_refresh_tokens()

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far is refused from now on ("Token has been
        revoked"): the client has to log in again."""
        self._revoked.update(str(i) for i in range(next(self._jti)))

    def expire_tokens(self) -> None:
        """Every access token issued so far answers ``ExpiredToken`` from now on (what a
        client whose clock runs behind the PDS's sees); refresh tokens stay good."""
        self._expired.update(self.issued_tokens)

    def add_image(self, name: str, body: bytes, content_type: str = "image/png", *,
                  status: int = 200, delay: float = 0.0, repeat: int = 1) -> str:
        """Serve ``body`` at ``/img/<name>`` (see :class:`Image`); returns its URL."""
        self.images[name] = Image(body, content_type, status, delay, repeat)
        return f"{self.base_url}/img/{name}"

    async def wait_for_records(self, n: int, timeout: float) -> list[PostRecord]:
        """Wait until at least ``n`` records are stored; return a copy of them.

        Raises ``TimeoutError`` naming what did arrive and the last calls' answers.
        """
        return await self._wait_for(n, timeout, "records", lambda: self.records)

    # -- tokens --------------------------------------------------------------------------

    def _jwt(self, scope: str, lifetime: float, jti: str = "") -> str:
        now = self.clock()
        payload: dict[str, Any] = {"scope": scope, "sub": self.did, "iat": math.floor(now),
                                   "exp": math.floor(now + lifetime),
                                   "aud": "did:web:pds.fake.test"}
        payload["jti"] = jti or f"a{next(self._jti)}"  # no two tokens alike, even in a second
        header = _b64url(json.dumps({"typ": "refresh+jwt" if jti else "at+jwt",
                                     "alg": "HS256"}).encode())
        body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
        signature = hmac.new(self._secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        token = f"{header}.{body}.{_b64url(signature)}"
        self.issued_tokens.append(token)
        return token

    def _session_body(self) -> dict[str, Any]:
        jti = str(next(self._jti))
        return {
            "did": self.did,
            "handle": self.handle,
            "accessJwt": self._jwt("com.atproto.appPass", self.access_lifetime),
            "refreshJwt": self._jwt("com.atproto.refresh", self.refresh_lifetime, jti),
            "didDoc": {
                "@context": ["https://www.w3.org/ns/did/v1"],
                "id": self.did,
                "alsoKnownAs": [f"at://{self.handle}"],
                "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                             "serviceEndpoint": self.base_url}],
            },
            "email": f"{self.handle}@example.invalid",
            "emailConfirmed": True,
            "active": True,
        }

    def _token(self, request: web.Request, scope: str) -> _Token:
        """The request's Bearer token, checked; raises :class:`_Answer` as the PDS would."""
        auth = request.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            raise _Answer(401, "AuthenticationRequired", "Authentication Required")
        jwt = auth[7:].strip()
        try:
            header, body, signature = jwt.split(".")
            expected = hmac.new(self._secret, f"{header}.{body}".encode(),
                                hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64url(signature)):
                raise ValueError("bad signature")
            payload = json.loads(_unb64url(body))
            token = _Token(payload["sub"], payload["scope"], float(payload["exp"]),
                           str(payload.get("jti", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise _Answer(400, "InvalidToken", "Token could not be verified") from exc
        now = self.clock()
        if scope == "com.atproto.refresh":
            if token.scope != scope:
                raise _Answer(400, "InvalidToken", "Invalid token type")
            if token.jti in self._revoked:
                raise _Answer(400, "ExpiredToken", "Token has been revoked")
            if now >= token.exp:
                raise _Answer(400, "ExpiredToken", "Token has expired")
            return token
        if token.scope == "com.atproto.refresh":
            raise _Answer(400, "InvalidToken", "Bad token scope")
        if self._reject_credentials:
            raise _Answer(401, "AuthenticationRequired", "Token has been revoked")
        if now >= token.exp or jwt in self._expired:
            raise _Answer(self.expired_token_status, "ExpiredToken", "Token has expired")
        return token

    # -- handlers ------------------------------------------------------------------------

    def _next_fault(self, queue: collections.deque[Fault] | None = None) -> Fault | None:
        """The next fault of ``queue`` (default: ``faults``); only ``faults`` draws random
        ones (``fail_ratio``)."""
        if queue is None:
            queue = self.faults
        if queue:
            return queue.popleft()
        return self._random_fault() if queue is self.faults else None

    def _random_server_error(self) -> Fault:
        return Fault.server_error_html(503)

    def _random_rate_limit(self) -> Fault:
        return Fault.rate_limited(reset=self.clock() + 1)

    async def _xrpc(self, request: web.Request) -> web.StreamResponse:
        nsid = request.match_info["nsid"]
        arrived = self.clock()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        posting = int(nsid == "com.atproto.repo.createRecord")
        self.posts_in_flight += posting
        status: int | None = None
        error: str | None = None
        fault: Fault | None = None
        try:
            # The request is in (as a PDS behind its proxy has it) before anything else: a
            # client that goes away while it is being handled does not unmake it. (Read later,
            # after the delay, aiohttp would raise "Connection lost" for a body it holds.)
            await request.read()
            handler = self._HANDLERS.get(nsid)
            if handler is None:
                status, error = 501, "MethodNotImplemented"
                return self._respond(501, xrpc_error(error, "Method Not Implemented"))
            method, run = handler
            if request.method != method:
                status, error = 405, "InvalidRequest"
                return self._respond(405, xrpc_error(error, "Incorrect HTTP method"))
            queue = {"com.atproto.repo.createRecord": self.faults,
                     "com.atproto.server.createSession": self.login_faults}.get(nsid)
            fault = self._next_fault(queue) if queue is not None else None
            await asyncio.sleep(self.delay)
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            if fault is not None and fault.kind == "status":
                status = fault.code
                if isinstance(fault.body, dict):
                    error = fault.body.get("error")
                return self._respond(fault.code, fault.body, fault.content_type, fault.headers)
            if fault is not None and fault.kind == "cut_before":
                return self._cut(request)
            try:
                body = await run(self, request)
            except _Answer as answer:
                status, error = answer.status, answer.error
                return self._respond(answer.status, xrpc_error(answer.error, answer.message))
            if fault is not None and fault.kind == "cut_after":
                return self._cut(request)
            status = 200
            return self._respond(200, body)
        finally:
            self.in_flight -= 1
            self.posts_in_flight -= posting
            self.requests.append(RequestRecord(arrived, nsid, status,
                                               fault.kind if fault else None, error))

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != JSON:
            raise _Answer(400, "InvalidRequest", "Wrong request encoding (Content-Type): "
                          f"{request.content_type}")
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            raise _Answer(400, "InvalidRequest", "Request body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise _Answer(400, "InvalidRequest", "Input must be an object")
        return body

    async def _create_session(self, request: web.Request) -> dict[str, Any]:
        body = await self._json_body(request)
        identifier, password = body.get("identifier"), body.get("password")
        if not isinstance(identifier, str) or not isinstance(password, str):
            raise _Answer(400, "InvalidRequest",
                          'Input must have the property "identifier" and "password"')
        if (self._reject_credentials or identifier.lower() not in (self.handle, self.did)
                or not hmac.compare_digest(password.encode(), self.app_password.encode())):
            raise _Answer(401, "AuthenticationRequired", "Invalid identifier or password")
        return self._session_body()

    async def _refresh_session(self, request: web.Request) -> dict[str, Any]:
        token = self._token(request, "com.atproto.refresh")
        if self._reject_credentials:
            raise _Answer(400, "ExpiredToken", "Token has been revoked")
        self._revoked.add(token.jti)  # rotation: the old refresh token is spent
        session = self._session_body()
        del session["email"], session["emailConfirmed"]
        return session

    async def _get_session(self, request: web.Request) -> dict[str, Any]:
        self._token(request, "com.atproto.access")
        return {"did": self.did, "handle": self.handle, "active": True,
                "email": f"{self.handle}@example.invalid", "emailConfirmed": True}

    async def _get_profile(self, request: web.Request) -> dict[str, Any]:
        self._token(request, "com.atproto.access")
        actor = request.query.get("actor", "")
        if actor not in (self.handle, self.did):
            raise _Answer(400, "InvalidRequest", "Profile not found")
        posts = len(self.texts())
        return {"did": self.did, "handle": self.handle, "displayName": self.handle,
                "followersCount": 0, "followsCount": 0, "postsCount": posts,
                "indexedAt": "2024-01-01T00:00:00.000Z"}

    def _repo(self, repo: object) -> None:
        if repo not in (self.did, self.handle):
            raise _Answer(400, "InvalidRequest", f"Could not find repo: {repo}")

    def _validate_post(self, record: object) -> None:
        def invalid(what: str) -> _Answer:
            return _Answer(400, "InvalidRequest", f"Invalid app.bsky.feed.post record: {what}")

        if not isinstance(record, dict):
            raise invalid("Record must be an object")
        if record.get("$type") != POST_COLLECTION:
            raise _Answer(400, "InvalidRequest",
                          f"Invalid $type: expected {POST_COLLECTION}, got {record.get('$type')}")
        text = record.get("text")
        if not isinstance(text, str):
            raise invalid("Record/text must be a string")
        encoded = text.encode("utf-8")
        if len(encoded) > MAX_TEXT_BYTES:
            raise invalid(f"Record/text must not be longer than {MAX_TEXT_BYTES} characters")
        if len(_CLUSTER.findall(text)) > MAX_GRAPHEMES:
            raise invalid(f"Record/text must not be longer than {MAX_GRAPHEMES} graphemes")
        created = record.get("createdAt")
        try:
            if not isinstance(created, str) or datetime.fromisoformat(
                    created.replace("Z", "+00:00")).tzinfo is None:
                raise ValueError(created)
        except ValueError as exc:
            raise invalid("Record/createdAt must be an valid atproto datetime") from exc
        facets = record.get("facets", [])
        if not isinstance(facets, list):
            raise invalid("Record/facets must be an array")
        for i, facet in enumerate(facets):
            index = facet.get("index") if isinstance(facet, dict) else None
            start = index.get("byteStart") if isinstance(index, dict) else None
            end = index.get("byteEnd") if isinstance(index, dict) else None
            if not (isinstance(start, int) and isinstance(end, int)
                    and 0 <= start < end <= len(encoded)):
                raise invalid(f"Record/facets/{i}/index must be a byte range within the text")
            features = facet.get("features")
            if not isinstance(features, list) or not features:
                raise invalid(f"Record/facets/{i}/features must be a non-empty array")
            for feature in features:
                if (isinstance(feature, dict)
                        and feature.get("$type") == "app.bsky.richtext.facet#link"
                        and not isinstance(feature.get("uri"), str)):
                    raise invalid(f"Record/facets/{i}/features/0/uri must be a string")
        embed = record.get("embed")
        if embed is not None:
            self._validate_embed(embed, invalid)

    def _validate_embed(self, embed: object, invalid: Callable[[str], _Answer]) -> None:
        if not isinstance(embed, dict) or embed.get("$type") != "app.bsky.embed.external":
            return  # other embeds: not the bot's business
        external = embed.get("external")
        if not isinstance(external, dict):
            raise invalid("Record/embed/external must be an object")
        for key in ("uri", "title", "description"):
            if not isinstance(external.get(key), str):
                raise invalid(f"Record/embed/external/{key} must be a string")
        thumb = external.get("thumb")
        if thumb is None:
            return
        link = thumb.get("ref", {}).get("$link") if isinstance(thumb, dict) else None
        blob = next((b for b in self.blobs if b.cid == link), None)
        if blob is None:
            raise _Answer(400, "InvalidRequest", f"Could not find blob: {link}")
        if not blob.mime_type.startswith("image/"):
            raise _Answer(400, "InvalidMimeType",
                          f"Wrong type of file. It is {blob.mime_type} but it must match image/*.")
        if blob.size > MAX_THUMB_BYTES:
            raise _Answer(400, "BlobTooLarge", f"This file is too large. It is {blob.size} "
                          f"bytes but the maximum size is {MAX_THUMB_BYTES} bytes.")

    def _store(self, collection: str, rkey: str, value: dict[str, Any]) -> PostRecord:
        uri = f"at://{self.did}/{collection}/{rkey}"
        cid = cid_for(json.dumps(value, sort_keys=True).encode(), codec=0x71)
        record = PostRecord(rkey, uri, cid, collection, value, self.clock())
        self.records = [r for r in self.records
                        if not (r.rkey == rkey and r.collection == collection)] + [record]
        return record

    def _write_answer(self, record: PostRecord) -> dict[str, Any]:
        rev = new_rev(record.at)
        return {"uri": record.uri, "cid": record.cid,
                "commit": {"cid": cid_for(rev.encode(), codec=0x71), "rev": rev},
                "validationStatus": "valid"}

    async def _write(self, request: web.Request, put: bool) -> dict[str, Any]:
        self._token(request, "com.atproto.access")
        body = await self._json_body(request)
        self._repo(body.get("repo"))
        collection, rkey, value = body.get("collection"), body.get("rkey"), body.get("record")
        if not isinstance(collection, str) or not NSID.fullmatch(collection):
            raise _Answer(400, "InvalidRequest", f"Invalid collection: {collection}")
        if put and not isinstance(rkey, str):
            raise _Answer(400, "InvalidRequest", 'Input must have the property "rkey"')
        if rkey is None:
            rkey = new_rev(self.clock())
        if not isinstance(rkey, str) or (collection == POST_COLLECTION
                                         and not TID.fullmatch(rkey)):
            raise _Answer(400, "InvalidRequest", f"Invalid rkey: {rkey}")
        if not isinstance(value, dict):
            raise _Answer(400, "InvalidRequest", "Input/record must be an object")
        if collection == POST_COLLECTION:
            self._validate_post(value)
        elif value.get("$type") != collection:
            raise _Answer(400, "InvalidRequest", f"Invalid $type: expected {collection}")
        if not put and self.record(rkey, collection) is not None:
            # today's PDS: the insert hits a unique constraint and the answer is a bare 500
            raise _Answer(500, "InternalServerError", "Internal Server Error")
        return self._write_answer(self._store(collection, rkey, value))

    async def _create_record(self, request: web.Request) -> dict[str, Any]:
        return await self._write(request, put=False)

    async def _put_record(self, request: web.Request) -> dict[str, Any]:
        return await self._write(request, put=True)

    async def _get_record(self, request: web.Request) -> dict[str, Any]:
        repo = request.query.get("repo")
        collection = request.query.get("collection", "")
        rkey = request.query.get("rkey", "")
        self._repo(repo)
        record = self.record(rkey, collection)
        if record is None:
            raise _Answer(400, "RecordNotFound",
                          f"Could not locate record: at://{self.did}/{collection}/{rkey}")
        return {"uri": record.uri, "cid": record.cid, "value": record.value}

    async def _upload_blob(self, request: web.Request) -> dict[str, Any]:
        self._token(request, "com.atproto.access")
        data = await request.read()
        if len(data) > self.max_blob_bytes:
            raise _Answer(413, "PayloadTooLarge", "request entity too large")
        mime = sniff(data) or request.content_type or "application/octet-stream"
        blob = Blob(cid_for(data), mime, data)
        if all(b.cid != blob.cid for b in self.blobs):
            self.blobs.append(blob)
        return {"blob": blob.ref()}

    _HANDLERS: ClassVar[dict[str, tuple[str, Callable[..., Any]]]] = {
        "com.atproto.server.createSession": ("POST", _create_session),
        "com.atproto.server.refreshSession": ("POST", _refresh_session),
        "com.atproto.server.getSession": ("GET", _get_session),
        "app.bsky.actor.getProfile": ("GET", _get_profile),
        "com.atproto.repo.createRecord": ("POST", _create_record),
        "com.atproto.repo.putRecord": ("POST", _put_record),
        "com.atproto.repo.getRecord": ("GET", _get_record),
        "com.atproto.repo.uploadBlob": ("POST", _upload_blob),
    }

    async def _image(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        image = self.images.get(name)
        if image is None:
            return web.Response(status=404, text="not found")
        await asyncio.sleep(image.delay)
        if image.repeat <= 1:
            self.image_bytes_sent[name] += len(image.body)
            return web.Response(status=image.status, body=image.body,
                                content_type=image.content_type)
        response = web.StreamResponse(status=image.status,
                                      headers={"Content-Type": image.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(image.repeat):
                await response.write(image.body)
                self.image_bytes_sent[name] += len(image.body)
            await response.write_eof()
        return response

    async def _get_records(self, request: web.Request) -> web.Response:
        return web.json_response({
            "records": [{"rkey": r.rkey, "uri": r.uri, "cid": r.cid, "collection": r.collection,
                         "value": r.value, "at": r.at} for r in self.records],
            "blobs": len(self.blobs), "requests": len(self.requests),
        })

    def _fault_queues(self) -> dict[str, collections.deque[Fault]]:
        return {"faults": self.faults, "login_faults": self.login_faults}

    def _apply_control(self, spec: dict[str, Any]) -> None:
        """``_control``'s own keys here: ``access_lifetime`` (s), ``expire_tokens`` (bool);
        ``login_faults`` is a queue like ``faults``."""
        if "access_lifetime" in spec:
            self.access_lifetime = float(spec["access_lifetime"])
        if spec.get("expire_tokens"):
            self.expire_tokens()

    def _control_state(self) -> dict[str, Any]:
        return {
            "access_lifetime": self.access_lifetime,
            "pending_faults": len(self.faults),
            "pending_login_faults": len(self.login_faults),
            "records": len(self.records),
            "requests": len(self.requests),
            "in_flight": self.in_flight,
            "posts_in_flight": self.posts_in_flight,
        }


def new_rev(now: float) -> str:
    """A TID for ``now`` (the fake's own rkeys and commit revs; clock id 0)."""
    value = int(now * 1_000_000) << 10
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def _build(args: argparse.Namespace) -> FakePDS:
    return FakePDS(
        handle=args.handle,
        app_password=args.app_password,
        did=args.did,
        delay=args.delay,
        fail_ratio=args.fail_ratio,
        rng=random.Random(args.seed),
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: run a standalone fake until SIGTERM/SIGINT."""
    parser = command_parser("tests.fakes.fake_bluesky", __doc__)
    parser.add_argument("--handle", default="alice.test")
    parser.add_argument("--app-password", default="abcd-efgh-ijkl-mnop")
    parser.add_argument("--did", default=None)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    run_fake(parser, argv, "FAKE_BLUESKY_URL", _build)


if __name__ == "__main__":
    main()
