"""A loopback fake of a Mastodon instance's ``POST /api/v1/statuses``, with fault injection.

In-process use (async tests)::

    async with FakeMastodon(token="tok") as fm:
        ...  # MastodonClient(base_url=fm.base_url, access_token="tok", ...)
        fm.faults.append(Fault.cut_after())
        statuses = await fm.wait_for_statuses(1, timeout=5)

Standalone use (subprocess tests, the demo)::

    python -m tests.fakes.fake_mastodon --port 0 --token T [--delay SECONDS] \\
        [--max-characters N] [--fail-ratio R --seed S]

prints ``FAKE_MASTODON_URL=http://127.0.0.1:PORT`` (flushed), serves until SIGTERM/SIGINT, then
prints ``LEDGER <json list of texts>``. ``GET /_ledger`` reads the texts over HTTP, ``GET
/_requests`` the requests as answered and the statuses made (ids, keys), and ``POST /_control``
steers the fake (see :meth:`FakeMastodon._control`; its answer includes ``in_flight``).

What the fake does, like Mastodon 4.x does:

- ``Authorization: Bearer <token>``: unknown or missing → 401 ``The access token is invalid``;
  a token configured without the ``write:statuses`` scope → 403 ``This action is outside the
  authorized scopes``;
- ``status`` from a JSON or form body; blank → 422 ``Validation failed: Text can't be blank``;
  too long → 422 ``Validation failed: Text character limit of N exceeded``. Length as
  Mastodon's StatusLengthValidator counts it: extended grapheme clusters of ``spoiler_text``
  plus ``status``, where each URL *with a scheme* (``extract_url_without_protocol: false``)
  counts ``characters_reserved_per_url``. (Mastodon also counts a remote mention
  ``@user@domain`` as ``@user``; the fake counts it in full, so it is stricter, never laxer);
- ``Idempotency-Key`` per token (Mastodon: per account): within 3600 s of the status being
  made, the same key answers 200 with that very status (whatever the new body says), even
  when the first attempt's connection was cut after it was made; a key whose status has been
  deleted answers 404 ``Record not found``; a key whose first request is still being handled
  answers 503 (Mastodon holds a Redis lock);
- ``GET /api/v2/instance`` and ``GET /api/v1/instance`` with ``configuration.statuses``;
  ``instance_style`` ``"v1"`` makes v2 a 404 (Mastodon before 4.0), ``"legacy"`` also drops
  ``configuration`` from v1 and names ``max_toot_chars`` (glitch-soc, Pleroma).

Error bodies are ``{"error": "..."}`` as ``application/json``; a 429 carries
``X-RateLimit-Limit``, ``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset`` as ISO 8601 with
microseconds (``2026-11-30T20:05:00.000000Z``), as Mastodon's Rack::Attack sends them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import html
import itertools
import json
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

import regex
from aiohttp import web
from twitter_text import extract_urls_with_indices

from tests.fakes.base import JSON, FakeService, command_parser, run_fake
from tests.fakes.base import Fault as BaseFault
from tests.fakes.base import FaultKind as FaultKind

InstanceStyle = Literal["v2", "v1", "legacy"]

FIRST_STATUS_ID = 113_500_000_000_000_001
IDEMPOTENCY_TTL = 3600.0  # Mastodon: redis.setex(idempotency_key, 3_600, status.id)
RATE_LIMIT_PERIOD = 300  # Rack::Attack's throttle period for authenticated API calls
STATUS_LIMIT = 300  # what successes advertise in X-RateLimit-Limit (never enforced)
VISIBILITIES = ("public", "unlisted", "private", "direct")

INVALID_TOKEN = "The access token is invalid"
OUTSIDE_SCOPES = "This action is outside the authorized scopes"
BLANK_TEXT = "Validation failed: Text can't be blank"
TOO_MANY_REQUESTS = "Too many requests"
RECORD_NOT_FOUND = "Record not found"
TEMPORARY_PROBLEM = "There was a temporary problem serving your request, please try again"

_CLUSTER = regex.compile(r"\X")


def too_long_message(max_characters: int) -> str:
    return f"Validation failed: Text character limit of {max_characters} exceeded"


def iso_reset(epoch: float) -> str:
    """An epoch time as Mastodon writes ``X-RateLimit-Reset`` (Ruby's ``iso8601(6)``)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mastodon_length(text: str, spoiler_text: str = "", characters_reserved_per_url: int = 23
                    ) -> int:
    """A status's length as Mastodon's StatusLengthValidator counts it (remote mentions
    aside: see the module docstring)."""
    total, pos = 0, 0
    for found in extract_urls_with_indices(text, extract_urls_without_protocol=False):
        start, end = found["indices"]
        total += len(_CLUSTER.findall(text[pos:start])) + characters_reserved_per_url
        pos = end
    total += len(_CLUSTER.findall(text[pos:]))
    return total + len(_CLUSTER.findall(spoiler_text))


@dataclass(frozen=True, slots=True)
class Status:
    """One status the fake made."""

    id: str
    text: str
    visibility: str
    at: float  # FakeMastodon clock time of creation
    token: str
    key: str | None = None  # its Idempotency-Key
    spoiler_text: str = ""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One ``POST /api/v1/statuses`` as received and answered."""

    time: float  # FakeMastodon clock time of arrival
    text: str | None  # the body's status, None if absent or unreadable
    status: int | None  # status answered; None when the connection was cut
    token_ok: bool  # a configured token (with or without write scope)
    key: str | None = None  # the Idempotency-Key header
    fault: str | None = None  # fault kind applied to this request, if any
    replayed: bool = False  # answered from the Idempotency-Key, nothing made
    authorization: str | None = None  # the Authorization header as sent


@dataclass(frozen=True)
class Fault(BaseFault):
    """One injected misbehaviour, consumed by one ``POST /api/v1/statuses``.

    Build them with the class methods (the API of :class:`tests.fakes.fake_x.Fault`); a JSON
    description for ``POST /_control`` is ``{"kind": "<class method name>", **kwargs}``.
    ``cut_after`` posts as a success would (key remembered); ``slow`` sleeps on top of
    ``delay``, holding the key's lock.
    """

    _KINDS: ClassVar[tuple[str, ...]] = (
        "status", "error", "rate_limited", "server_error_html", "unauthorized", "forbidden",
        "validation_failed", "cut_before", "cut_after", "slow",
    )

    @classmethod
    def error(cls, code: int, message: str) -> Self:
        """Mastodon's error shape: ``code`` with ``{"error": message}``."""
        return cls.status(code, {"error": message})

    @classmethod
    def rate_limited(cls, reset: float | None = None, retry_after: float | None = None, *,
                     limit: int = STATUS_LIMIT, reset_header: str | None = None,
                     headers: bool = True) -> Self:
        """A 429 ``{"error": "Too many requests"}`` with Mastodon's headers.

        ``reset`` is epoch seconds (default: the next 5-minute boundary of the wall clock,
        like Rack::Attack's); ``reset_header`` sends that text verbatim instead (an epoch
        number, garbage); ``headers=False`` sends no ``X-RateLimit-*`` (a proxy's 429);
        ``retry_after`` adds ``Retry-After`` in whole seconds."""
        sent: dict[str, str] = {}
        if headers:
            if reset is None:
                now = time.time()
                reset = now + (RATE_LIMIT_PERIOD - now % RATE_LIMIT_PERIOD)
            sent["X-RateLimit-Limit"] = str(limit)
            sent["X-RateLimit-Remaining"] = "0"
            sent["X-RateLimit-Reset"] = reset_header if reset_header is not None \
                else iso_reset(reset)
        if retry_after is not None:
            sent["Retry-After"] = str(math.ceil(retry_after))
        return cls.status(429, {"error": TOO_MANY_REQUESTS}, sent, JSON)

    @classmethod
    def server_error_html(cls, code: int = 502) -> Self:
        """A proxy-style HTML error page (not JSON), e.g. nginx's 502 in front of Puma."""
        title = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable",
                 504: "504 Gateway Time-out"}.get(code, f"{code} Error")
        page = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
                f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                "</body>\r\n</html>\r\n")
        return cls.status(code, page, None, "text/html")

    @classmethod
    def unauthorized(cls, message: str = INVALID_TOKEN) -> Self:
        """401 (``The access token was revoked``, ``... expired``, ``... is invalid``)."""
        return cls.error(401, message)

    @classmethod
    def forbidden(cls, message: str = OUTSIDE_SCOPES) -> Self:
        """403 (default: a token without ``write:statuses``; also ``Your login is currently
        disabled``, ``This action is not allowed``)."""
        return cls.error(403, message)

    @classmethod
    def validation_failed(cls, message: str = "Text character limit of 500 exceeded") -> Self:
        """422 ``Validation failed: <message>``."""
        return cls.error(422, f"Validation failed: {message}")


class FakeMastodon(FakeService[Fault, RequestRecord]):
    """The fake server. See the module docstring; all attributes may be changed at any time.
    ``base_url`` (``http://127.0.0.1:PORT``) is what ``MASTODON_BASE_URL`` would be.

    Order of handling for each ``POST /api/v1/statuses``: record arrival, pop one fault (or
    draw a random one when ``fail_ratio`` > 0), sleep ``delay``, apply a ``status`` or
    ``cut_before`` fault; otherwise 401/403 for the token; take the Idempotency-Key's lock
    (503 when held); sleep a ``slow`` fault's seconds; answer a remembered key (200 with its
    status, or 404 when deleted); 422 for a blank, too long or unknown-visibility status;
    else make the status (200, or ``cut_after``) and remember its key.
    """

    _NAME = "FakeMastodon"
    _fault_type = Fault

    def __init__(
        self,
        *,
        token: str = "test-mastodon-token",
        read_only_tokens: Iterable[str] = (),
        max_characters: int = 500,
        characters_reserved_per_url: int = 23,
        delay: float = 0.0,
        clock: Callable[[], float] = time.time,
        fail_ratio: float = 0.0,
        rng: random.Random | None = None,
        instance_style: InstanceStyle = "v2",
        username: str = "feedbot",
    ) -> None:
        super().__init__(delay=delay, clock=clock, fail_ratio=fail_ratio, rng=rng)
        self.tokens: set[str] = {token}  # tokens with write:statuses
        self.read_only_tokens: set[str] = set(read_only_tokens)  # valid, scope read only
        self.max_characters = max_characters
        self.characters_reserved_per_url = characters_reserved_per_url
        self.instance_style: InstanceStyle = instance_style
        self.username = username

        self.statuses: list[Status] = []  # accepted, in order (deleted ones removed)
        self._ids = itertools.count(FIRST_STATUS_ID)
        self._made: dict[str, Status] = {}  # every status ever made, by id
        self._keys: dict[tuple[str, str], tuple[str, float]] = {}  # → (status id, made at)
        self._locks: set[tuple[str, str]] = set()

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/statuses", self._post_status)
        app.router.add_get("/api/v2/instance", self._instance_v2)
        app.router.add_get("/api/v1/instance", self._instance_v1)
        app.router.add_get("/api/v1/apps/verify_credentials", self._verify_app)
        app.router.add_get("/_ledger", self._get_ledger)
        app.router.add_get("/_requests", self._get_requests)
        app.router.add_post("/_control", self._control)
        return app

    @property
    def statuses_url(self) -> str:
        """The full URL of ``POST /api/v1/statuses``."""
        return self.base_url + "/api/v1/statuses"

    # -- inspection and steering ---------------------------------------------------------

    def texts(self) -> list[str]:
        """The accepted texts, in order."""
        return [s.text for s in self.statuses]

    def delete_status(self, status_id: str) -> None:
        """Delete a status as its author would (its key then answers 404 for the hour)."""
        self.statuses = [s for s in self.statuses if s.id != status_id]

    async def wait_for_statuses(self, n: int, timeout: float) -> list[Status]:
        """Wait until at least ``n`` statuses were accepted; return a copy of them.

        Raises ``TimeoutError`` naming what did arrive and the last requests' statuses.
        """
        return await self._wait_for(n, timeout, "statuses", lambda: self.statuses)

    # -- helpers -------------------------------------------------------------------------

    def _random_server_error(self) -> Fault:
        return Fault.server_error_html(502)

    def _random_rate_limit(self) -> Fault:
        return Fault.rate_limited(reset=self.clock() + 1)

    @classmethod
    def _error(cls, code: int, message: str, headers: dict[str, str] | None = None
               ) -> web.Response:
        return cls._respond(code, {"error": message}, JSON, headers)

    def _rate_headers(self, now: float) -> dict[str, str]:
        window = math.floor(now / RATE_LIMIT_PERIOD) * RATE_LIMIT_PERIOD
        used = sum(1 for s in self._made.values() if s.at >= window)
        return {"X-RateLimit-Limit": str(STATUS_LIMIT),
                "X-RateLimit-Remaining": str(max(0, STATUS_LIMIT - used)),
                "X-RateLimit-Reset": iso_reset(window + RATE_LIMIT_PERIOD)}

    def _entity(self, status: Status) -> dict[str, Any]:
        paragraphs = [html.escape(p).replace("\n", "<br />") for p in status.text.split("\n\n")]
        url = f"{self.base_url}/@{self.username}/{status.id}"
        return {
            "id": status.id,
            "created_at": iso_reset(status.at)[:-4] + "Z",  # milliseconds, like Mastodon
            "visibility": status.visibility,
            "spoiler_text": status.spoiler_text,
            "content": "".join(f"<p>{p}</p>" for p in paragraphs),
            "url": url,
            "uri": f"{self.base_url}/users/{self.username}/statuses/{status.id}",
            "account": {"id": "1", "username": self.username, "acct": self.username},
        }

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        """The request's parameters: a JSON object or a form, as Rails reads either."""
        if request.content_type == "application/json":
            try:
                payload = json.loads(await request.read() or b"null")
            except ValueError:
                return {}
            return payload if isinstance(payload, dict) else {}
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    # -- handlers ------------------------------------------------------------------------

    async def _post_status(self, request: web.Request) -> web.Response:
        arrived = self.clock()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        authorization = request.headers.get("Authorization")
        key = request.headers.get("Idempotency-Key") or None
        text: str | None = None
        status: int | None = None
        fault: Fault | None = None
        token_ok = False
        replayed = False
        lock: tuple[str, str] | None = None
        try:
            params = await self._params(request)
            if isinstance(params.get("status"), str):
                text = params["status"]
            token = ""
            if authorization and authorization[:7].lower() == "bearer ":
                token = authorization[7:].strip()
            token_ok = token in self.tokens or token in self.read_only_tokens
            fault = self._next_fault()
            await asyncio.sleep(self.delay)
            if fault is not None and fault.kind == "status":
                status = fault.code
                return self._respond(fault.code, fault.body, fault.content_type, fault.headers)
            if fault is not None and fault.kind == "cut_before":
                return self._cut(request)
            cut_after = fault is not None and fault.kind == "cut_after"

            if self._reject_credentials or not token_ok:
                status = 401
                return self._error(401, INVALID_TOKEN)
            if token not in self.tokens:
                status = 403
                return self._error(403, OUTSIDE_SCOPES)
            if key is not None:
                if (token, key) in self._locks:
                    status = 503
                    return self._error(503, TEMPORARY_PROBLEM)
                lock = (token, key)
                self._locks.add(lock)
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            now = self.clock()

            remembered = self._keys.get((token, key)) if key is not None else None
            if remembered is not None and now - remembered[1] < IDEMPOTENCY_TTL:
                replayed = True
                made = self._made[remembered[0]]
                if made not in self.statuses:
                    status = 404
                    response = self._error(404, RECORD_NOT_FOUND)
                else:
                    status = 200
                    response = self._respond(200, self._entity(made), JSON,
                                             self._rate_headers(now))
            else:
                response = self._create(token, key, text, params, now)
                status = response.status
            if cut_after:
                status = None
                return self._cut(request)
            return response
        finally:
            if lock is not None:
                self._locks.discard(lock)
            self.in_flight -= 1
            self.requests.append(RequestRecord(
                arrived, text, status, token_ok, key, fault.kind if fault else None, replayed,
                authorization,
            ))

    def _create(self, token: str, key: str | None, text: str | None, params: dict[str, Any],
                now: float) -> web.Response:
        spoiler = params.get("spoiler_text")
        spoiler = spoiler if isinstance(spoiler, str) else ""
        visibility = params.get("visibility") or "public"
        if not text or not text.strip():
            return self._error(422, BLANK_TEXT)
        if mastodon_length(text, spoiler, self.characters_reserved_per_url) \
                > self.max_characters:
            return self._error(422, too_long_message(self.max_characters))
        if visibility not in VISIBILITIES:
            return self._error(422, "Validation failed: Visibility is not included in the list")
        made = Status(str(next(self._ids)), text, visibility, now, token, key, spoiler)
        self._made[made.id] = made
        self.statuses.append(made)
        if key is not None:
            self._keys[(token, key)] = (made.id, now)
        return self._respond(200, self._entity(made), JSON, self._rate_headers(now))

    def _statuses_configuration(self) -> dict[str, Any]:
        return {"max_characters": self.max_characters, "max_media_attachments": 4,
                "characters_reserved_per_url": self.characters_reserved_per_url}

    async def _instance_v2(self, request: web.Request) -> web.Response:
        if self.instance_style != "v2":  # Mastodon before 4.0: Rails' own 404 page
            return self._respond(404, "<!DOCTYPE html><html><head><title>The page you were "
                                 "looking for doesn't exist (404)</title></head></html>",
                                 "text/html")
        host = request.host
        return web.json_response({
            "domain": host, "title": "Fake Mastodon", "version": "4.3.0",
            "source_url": "https://github.com/mastodon/mastodon",
            "configuration": {
                "urls": {"streaming": f"ws://{host}"},
                "accounts": {"max_featured_tags": 10},
                "statuses": self._statuses_configuration(),
            },
            "registrations": {"enabled": False, "approval_required": False},
        })

    async def _verify_app(self, request: web.Request) -> web.Response:
        """``GET /api/v1/apps/verify_credentials``: any valid token, whatever its scopes."""
        authorization = request.headers.get("Authorization", "")
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        if self._reject_credentials or token not in self.tokens | self.read_only_tokens:
            return self._error(401, INVALID_TOKEN)
        return web.json_response({"name": "feed-tweeter", "website": None})

    async def _instance_v1(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"uri": request.host, "title": "Fake Mastodon",
                                "version": "3.5.3", "urls": {"streaming_api": "ws://x"}}
        if self.instance_style == "legacy":
            body["version"] = "2.9.3 (compatible; glitch)"
            body["max_toot_chars"] = self.max_characters
        else:
            body["configuration"] = {"statuses": self._statuses_configuration()}
        return web.json_response(body)

    async def _get_requests(self, request: web.Request) -> web.Response:
        """Every ``POST /api/v1/statuses`` answered so far (:class:`RequestRecord` as JSON,
        without the Authorization header), and the statuses made, with their ids and keys."""
        return web.json_response({
            "requests": [{k: v for k, v in dataclasses.asdict(r).items() if k != "authorization"}
                         for r in self.requests],
            "statuses": [{"id": s.id, "text": s.text, "key": s.key, "at": s.at}
                         for s in self.statuses]})

    def _check_control(self, spec: dict[str, Any]) -> None:
        if spec.get("instance_style", "v2") not in ("v2", "v1", "legacy"):
            raise ValueError("instance_style is v2, v1 or legacy")

    def _apply_control(self, spec: dict[str, Any]) -> None:
        """``_control``'s own keys here: ``max_characters``, ``characters_reserved_per_url``
        and ``instance_style``."""
        if "max_characters" in spec:
            self.max_characters = int(spec["max_characters"])
        if "characters_reserved_per_url" in spec:
            self.characters_reserved_per_url = int(spec["characters_reserved_per_url"])
        if "instance_style" in spec:
            self.instance_style = spec["instance_style"]

    def _control_state(self) -> dict[str, Any]:
        return {
            "max_characters": self.max_characters,
            "characters_reserved_per_url": self.characters_reserved_per_url,
            "instance_style": self.instance_style,
            "pending_faults": len(self.faults),
            "statuses": len(self.statuses),
            "requests": len(self.requests),
            "in_flight": self.in_flight,
        }


def _build(args: argparse.Namespace) -> FakeMastodon:
    return FakeMastodon(
        token=args.token,
        max_characters=args.max_characters,
        delay=args.delay,
        fail_ratio=args.fail_ratio,
        rng=random.Random(args.seed),
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: run a standalone fake until SIGTERM/SIGINT."""
    parser = command_parser("tests.fakes.fake_mastodon", __doc__)
    parser.add_argument("--token", default="test-mastodon-token")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--max-characters", type=int, default=500)
    run_fake(parser, argv, "FAKE_MASTODON_URL", _build)


if __name__ == "__main__":
    main()
