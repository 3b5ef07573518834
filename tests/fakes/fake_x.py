"""A loopback fake of X's API v2 ``POST /2/tweets``, with fault injection.

In-process use (async tests)::

    async with FakeX(consumer_key="ck", consumer_secret="cs",
                     access_token="at", access_token_secret="ats") as fx:
        ...  # point the bot at fx.base_url + "/2/tweets"
        fx.faults.append(Fault.rate_limited(reset_15min=time.time() + 1))
        tweets = await fx.wait_for_tweets(1, timeout=5)

Standalone use (subprocess tests, the demo)::

    python -m tests.fakes.fake_x --port 0 --consumer-key K --consumer-secret S \\
        --access-token T --access-token-secret TS [--delay SECONDS]

prints ``FAKE_X_URL=http://127.0.0.1:PORT`` (flushed), serves until SIGTERM/SIGINT, then prints
``LEDGER <json list of texts>``. ``GET /2/ledger`` reads the ledger over HTTP, ``GET
/2/_requests`` the requests as answered, and ``POST /2/_control`` steers the fake (see
:meth:`FakeX._control`; its answer includes ``in_flight``).

What the fake checks, like X does: the OAuth 1.0a HMAC-SHA1 signature (base string built from
the URL the request arrived at: ``http://<Host header><path>`` plus query and ``oauth_*``
parameters, never the JSON body), the consumer key and token, a non-empty ``text``, and
duplicate content (403). Error bodies are ``application/problem+json`` like X's. Note that
aiohttp's ``ClientResponse.json()`` accepts that type with its default ``content_type``
(its check matches ``application/*+json``), so tweepy can read them; HTML 5xx bodies from
:meth:`Fault.server_error_html` make ``json()`` raise ``aiohttp.ContentTypeError``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import dataclasses
import hashlib
import hmac
import itertools
import json
import math
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from aiohttp import web
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

FaultKind = Literal["status", "cut_before", "cut_after", "slow"]

PROBLEM_JSON = "application/problem+json"
FIRST_TWEET_ID = 1_790_000_000_000_000_001

UNAUTHORIZED_BODY: dict[str, Any] = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
DUPLICATE_BODY: dict[str, Any] = {
    "detail": DUPLICATE_DETAIL,
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
TOO_MANY_REQUESTS_BODY: dict[str, Any] = {
    "title": "Too Many Requests",
    "detail": "Too Many Requests",
    "type": "about:blank",
    "status": 429,
}
OAUTH1_PERMISSIONS_DETAIL = (
    "Your client app is not configured with the appropriate oauth1 app permissions "
    "for this endpoint."
)
CREDITS_DETAIL = "Your enrolled account does not have any credits to fulfill this request."


def _epoch(value: float) -> str:
    """Format an epoch-seconds reset the way X does: whole seconds, rounded up."""
    return str(math.ceil(value))


def invalid_request_body(message: str) -> dict[str, Any]:
    """X's 400 body for an invalid parameter."""
    return {
        "errors": [{"message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


@dataclass(frozen=True, slots=True)
class Tweet:
    """One accepted post."""

    id: str
    text: str
    at: float  # FakeX clock time of acceptance


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One ``POST /2/tweets`` as received and answered."""

    time: float  # FakeX clock time of arrival
    text: str | None  # the body's text, None if absent or unreadable
    status: int | None  # status answered; None when the connection was cut
    signature_ok: bool  # OAuth signature, consumer key and token all valid
    fault: str | None = None  # fault kind applied to this request, if any


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, consumed by one request.

    Build them with the class methods; a JSON description for ``POST /2/_control`` is
    ``{"kind": "<class method name>", **its keyword arguments}``.
    """

    kind: FaultKind
    code: int = 0
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = PROBLEM_JSON
    seconds: float = 0.0

    @classmethod
    def status(
        cls,
        code: int,
        body: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> Fault:
        """Answer ``code`` with ``body`` (a dict is sent as JSON, a str as is)."""
        if content_type is None:
            content_type = PROBLEM_JSON if isinstance(body, dict) else "text/plain"
        return cls("status", code, body, dict(headers or {}), content_type)

    @classmethod
    def rate_limited(
        cls,
        reset_15min: float | None = None,
        user_24h_reset: float | None = None,
        user_24h_remaining: int | None = None,
        app_24h_reset: float | None = None,
        app_24h_remaining: int | None = None,
        retry_after: float | None = None,
        *,
        limit_15min: int = 100,
        user_24h_limit: int = 17,
        app_24h_limit: int = 1667,
    ) -> Fault:
        """A 429 with X's problem body; only the headers whose values are given are sent.

        Resets are epoch seconds. ``x-rate-limit-remaining`` is always 0 when the 15-minute
        group is sent; a 24-hour group is sent when its reset or remaining is given.
        """
        headers: dict[str, str] = {}
        if reset_15min is not None:
            headers["x-rate-limit-limit"] = str(limit_15min)
            headers["x-rate-limit-remaining"] = "0"
            headers["x-rate-limit-reset"] = _epoch(reset_15min)
        for prefix, limit, remaining, reset in (
            ("x-user-limit-24hour", user_24h_limit, user_24h_remaining, user_24h_reset),
            ("x-app-limit-24hour", app_24h_limit, app_24h_remaining, app_24h_reset),
        ):
            if remaining is None and reset is None:
                continue
            headers[f"{prefix}-limit"] = str(limit)
            if remaining is not None:
                headers[f"{prefix}-remaining"] = str(remaining)
            if reset is not None:
                headers[f"{prefix}-reset"] = _epoch(reset)
        if retry_after is not None:
            headers["retry-after"] = str(math.ceil(retry_after))
        return cls.status(429, dict(TOO_MANY_REQUESTS_BODY), headers, PROBLEM_JSON)

    @classmethod
    def server_error_html(cls, code: int = 503) -> Fault:
        """A proxy-style HTML error page (not JSON), e.g. 502/503/504."""
        title = f"{code} Service Temporarily Unavailable"
        html = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return cls.status(code, html, None, "text/html")

    @classmethod
    def payment_required(cls) -> Fault:
        """402 as seen when pay-per-use credits run out."""
        body = {"title": "CreditsDepleted", "detail": CREDITS_DETAIL, "status": 402}
        return cls.status(402, body, None, PROBLEM_JSON)

    @classmethod
    def forbidden(
        cls,
        detail: str = OAUTH1_PERMISSIONS_DETAIL,
        type: str = "https://api.twitter.com/2/problems/oauth1-permissions",
    ) -> Fault:
        """A 403 that is not the duplicate-content one (default: read-only token)."""
        body = {"title": "Forbidden", "detail": detail, "type": type, "status": 403}
        return cls.status(403, body, None, PROBLEM_JSON)

    @classmethod
    def bad_request(cls, detail: str = "The `text` field is invalid.") -> Fault:
        """A 400 ``Invalid Request`` whose ``errors[0].message`` is ``detail``."""
        return cls.status(400, invalid_request_body(detail), None, "application/json")

    @classmethod
    def cut_before(cls) -> Fault:
        """Close the connection without answering and without posting."""
        return cls("cut_before")

    @classmethod
    def cut_after(cls) -> Fault:
        """Post (as a success would), then close the connection without answering."""
        return cls("cut_after")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Sleep ``seconds`` (on top of ``FakeX.delay``), then handle normally."""
        return cls("slow", seconds=seconds)

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Fault:
        """Build from ``{"kind": "<class method name>", **kwargs}``."""
        spec = dict(spec)
        kind = spec.pop("kind")
        factories: dict[str, Callable[..., Fault]] = {
            "status": cls.status,
            "rate_limited": cls.rate_limited,
            "server_error_html": cls.server_error_html,
            "payment_required": cls.payment_required,
            "forbidden": cls.forbidden,
            "bad_request": cls.bad_request,
            "cut_before": cls.cut_before,
            "cut_after": cls.cut_after,
            "slow": cls.slow,
        }
        if kind not in factories:
            raise ValueError(f"unknown fault kind {kind!r}")
        return factories[kind](**spec)


def verify_oauth1_hmac_sha1(
    *,
    method: str,
    url: str,
    query_string: str,
    authorization: str | None,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
) -> bool:
    """Check an ``Authorization: OAuth ...`` header per RFC 5849 (HMAC-SHA1 only).

    ``url`` is the request URL without query (``http://host:port/path``); ``query_string``
    is the raw (still percent-encoded) query. The body never takes part (it is JSON).
    """
    if not authorization or not authorization[:6].lower() == "oauth ":
        return False
    try:
        header = {k: oauth_utils.unescape(v)
                  for k, v in oauth_utils.parse_authorization_header(authorization)}
        params = oauth_signature.collect_parameters(
            uri_query=query_string, headers={"Authorization": authorization}
        )
        base = oauth_signature.signature_base_string(
            method,
            oauth_signature.base_string_uri(url),
            oauth_signature.normalize_parameters(params),
        )
    except ValueError:
        return False
    if (
        header.get("oauth_signature_method") != "HMAC-SHA1"
        or header.get("oauth_consumer_key") != consumer_key
        or header.get("oauth_token") != token
    ):
        return False
    # RFC 5849 3.4.2 (oauthlib's sign_hmac_sha1 is deprecated in favour of a client-side API)
    key = f"{oauth_utils.escape(consumer_secret)}&{oauth_utils.escape(token_secret)}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()
    expected = base64.b64encode(digest).decode("ascii")
    return hmac.compare_digest(expected, header.get("oauth_signature", ""))


class FakeX:
    """The fake server. See the module docstring; all attributes may be changed at any time.

    Order of handling for each ``POST /2/tweets``: record arrival and concurrency, pop one
    fault (or draw a random one when ``fail_ratio`` > 0), sleep ``delay`` (+ a ``slow``
    fault's seconds), apply a ``status``/``cut_before`` fault; otherwise 401 when
    ``reject_credentials`` or the signature is bad, 400 for a missing text, 403 for a
    duplicate, 429 when ``user_daily_limit`` is spent, else post (201, or ``cut_after``).
    """

    def __init__(
        self,
        *,
        consumer_key: str = "ck",
        consumer_secret: str = "cs",
        access_token: str = "at",
        access_token_secret: str = "ats",
        delay: float = 0.0,
        clock: Callable[[], float] = time.time,
        fail_ratio: float = 0.0,
        rng: random.Random | None = None,
        rate_limit_15min: int = 10_000,
        user_daily_limit: int | None = None,
    ) -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.access_token = access_token
        self.access_token_secret = access_token_secret
        self.delay = delay
        self.clock = clock
        self.fail_ratio = fail_ratio
        self.rng = rng or random.Random()
        # Advertised in x-rate-limit-* headers of successes; never enforced (use faults).
        self.rate_limit_15min = rate_limit_15min
        # When set, successes carry x-user-limit-24hour-* headers and, once spent, posts
        # get 429 (24-hour remaining 0, 15-minute remaining > 0) until the day resets.
        self.user_daily_limit = user_daily_limit

        self.ledger: list[Tweet] = []
        self.requests: list[RequestRecord] = []  # appended as each request finishes
        self.faults: collections.deque[Fault] = collections.deque()
        self.in_flight = 0
        self.max_in_flight = 0
        self._reject_credentials = False
        self._ids = itertools.count(FIRST_TWEET_ID)
        self._day_start: float | None = None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 = a free port) and return the base URL."""
        app = web.Application()
        app.router.add_post("/2/tweets", self._post_tweet)
        app.router.add_get("/2/ledger", self._get_ledger)
        app.router.add_get("/2/_requests", self._get_requests)
        app.router.add_post("/2/_control", self._control)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
        return self._base_url

    async def close(self) -> None:
        """Stop listening; handlers still running after 0.5 s are cancelled."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeX:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; the post endpoint is ``base_url + "/2/tweets"``."""
        if self._base_url is None:
            raise RuntimeError("FakeX is not started")
        return self._base_url

    @property
    def tweets_url(self) -> str:
        """The full URL of ``POST /2/tweets``."""
        return self.base_url + "/2/tweets"

    # -- inspection and steering ---------------------------------------------------------

    def texts(self) -> list[str]:
        """The accepted texts, in order."""
        return [t.text for t in self.ledger]

    def reject_credentials(self, flag: bool) -> None:
        """While True every post gets 401 (a revoked token); False means "fixed"."""
        self._reject_credentials = flag

    @property
    def rejecting_credentials(self) -> bool:
        """Whether :meth:`reject_credentials` is in force."""
        return self._reject_credentials

    async def wait_for_tweets(self, n: int, timeout: float) -> list[Tweet]:
        """Wait until the ledger holds at least ``n`` tweets; return a copy of it.

        Raises ``TimeoutError`` naming what did arrive and the last requests' statuses.
        """
        deadline = time.monotonic() + timeout
        while len(self.ledger) < n:
            if time.monotonic() >= deadline:
                recent = [(r.status, r.fault, r.text) for r in self.requests[-5:]]
                raise TimeoutError(
                    f"FakeX: expected >= {n} tweets within {timeout}s, got "
                    f"{len(self.ledger)}: {self.texts()!r}; {len(self.requests)} requests, "
                    f"last (status, fault, text): {recent!r}"
                )
            await asyncio.sleep(0.01)
        return list(self.ledger)

    # -- handlers ------------------------------------------------------------------------

    def _next_fault(self) -> Fault | None:
        if self.faults:
            return self.faults.popleft()
        if self.fail_ratio > 0 and self.rng.random() < self.fail_ratio:
            choice = self.rng.randrange(4)
            if choice == 0:
                return Fault.server_error_html(503)
            if choice == 1:
                return Fault.cut_before()
            if choice == 2:
                return Fault.cut_after()
            return Fault.rate_limited(reset_15min=self.clock() + 1)
        return None

    def _signature_ok(self, request: web.Request) -> bool:
        return verify_oauth1_hmac_sha1(
            method=request.method,
            url=f"http://{request.host}{request.rel_url.raw_path}",
            query_string=request.rel_url.raw_query_string,
            authorization=request.headers.get("Authorization"),
            consumer_key=self.consumer_key,
            consumer_secret=self.consumer_secret,
            token=self.access_token,
            token_secret=self.access_token_secret,
        )

    def _rate_headers(self, now: float) -> dict[str, str]:
        window = math.floor(now / 900) * 900
        used = sum(1 for t in self.ledger if t.at >= window)
        headers = {
            "x-rate-limit-limit": str(self.rate_limit_15min),
            "x-rate-limit-remaining": str(max(0, self.rate_limit_15min - used)),
            "x-rate-limit-reset": _epoch(window + 900),
        }
        if self.user_daily_limit is not None and self._day_start is not None:
            used_today = sum(1 for t in self.ledger if t.at >= self._day_start)
            headers["x-user-limit-24hour-limit"] = str(self.user_daily_limit)
            headers["x-user-limit-24hour-remaining"] = str(
                max(0, self.user_daily_limit - used_today)
            )
            headers["x-user-limit-24hour-reset"] = _epoch(self._day_start + 86_400)
        return headers

    def _daily_exhausted(self, now: float) -> bool:
        if self.user_daily_limit is None:
            return False
        if self._day_start is None or now >= self._day_start + 86_400:
            self._day_start = now
        used_today = sum(1 for t in self.ledger if t.at >= self._day_start)
        return used_today >= self.user_daily_limit

    @staticmethod
    def _respond(
        code: int,
        body: dict[str, Any] | str | None,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        text = json.dumps(body) if isinstance(body, dict) else (body or "")
        return web.Response(status=code, text=text, content_type=content_type,
                            headers=headers)

    @staticmethod
    def _cut(request: web.Request) -> web.Response:
        """Close the TCP connection; aiohttp then fails to write the returned response and
        drops it quietly (no error log), so the client sees a disconnect."""
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)

    async def _post_tweet(self, request: web.Request) -> web.Response:
        arrived = self.clock()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        text: str | None = None
        status: int | None = None
        fault: Fault | None = None
        signature_ok = False
        try:
            signature_ok = self._signature_ok(request)
            try:
                payload = json.loads(await request.read() or b"null")
            except ValueError:
                payload = None
            if isinstance(payload, dict) and isinstance(payload.get("text"), str):
                text = payload["text"]
            fault = self._next_fault()
            await asyncio.sleep(self.delay)
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            if fault is not None and fault.kind == "status":
                status = fault.code
                return self._respond(fault.code, fault.body, fault.content_type, fault.headers)
            if fault is not None and fault.kind == "cut_before":
                return self._cut(request)
            cut_after = fault is not None and fault.kind == "cut_after"
            now = self.clock()

            if self._reject_credentials or not signature_ok:
                status = 401
                response = self._respond(401, UNAUTHORIZED_BODY, PROBLEM_JSON)
            elif not text:
                status = 400
                response = self._respond(
                    400, invalid_request_body("The `text` field is required."),
                    "application/json",
                )
            elif text in self.texts():
                status = 403
                response = self._respond(403, DUPLICATE_BODY, PROBLEM_JSON)
            elif self._daily_exhausted(now):
                status = 429
                response = self._respond(429, TOO_MANY_REQUESTS_BODY, PROBLEM_JSON,
                                         self._rate_headers(now))
            else:
                tweet = Tweet(str(next(self._ids)), text, now)
                self.ledger.append(tweet)
                status = 201
                body = {"data": {"id": tweet.id, "text": tweet.text,
                                 "edit_history_tweet_ids": [tweet.id]}}
                response = self._respond(201, body, "application/json",
                                         self._rate_headers(now))
            if cut_after:
                status = None
                return self._cut(request)
            return response
        finally:
            self.in_flight -= 1
            self.requests.append(RequestRecord(
                arrived, text, status, signature_ok, fault.kind if fault else None
            ))

    async def _get_ledger(self, request: web.Request) -> web.Response:
        tweets = [{"id": t.id, "text": t.text, "at": t.at} for t in self.ledger]
        return web.json_response({"tweets": tweets, "requests": len(self.requests)})

    async def _get_requests(self, request: web.Request) -> web.Response:
        """Every ``POST /2/tweets`` answered so far (:class:`RequestRecord` as JSON)."""
        return web.json_response([dataclasses.asdict(r) for r in self.requests])

    async def _control(self, request: web.Request) -> web.Response:
        """Steer a running fake. JSON keys, all optional: ``delay`` (s), ``fail_ratio``,
        ``seed`` (reseeds the rng), ``reject_credentials`` (bool), ``user_daily_limit``
        (int or null), ``faults`` (list of :meth:`Fault.from_json` specs, appended),
        ``clear_faults`` (bool). Answers the resulting state."""
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise ValueError("expected a JSON object")
            new_faults = [Fault.from_json(f) for f in spec.get("faults", [])]
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if "delay" in spec:
            self.delay = float(spec["delay"])
        if "fail_ratio" in spec:
            self.fail_ratio = float(spec["fail_ratio"])
        if "seed" in spec:
            self.rng.seed(spec["seed"])
        if "reject_credentials" in spec:
            self.reject_credentials(bool(spec["reject_credentials"]))
        if "user_daily_limit" in spec:
            self.user_daily_limit = spec["user_daily_limit"]
        if spec.get("clear_faults"):
            self.faults.clear()
        self.faults.extend(new_faults)
        return web.json_response({
            "delay": self.delay,
            "fail_ratio": self.fail_ratio,
            "reject_credentials": self._reject_credentials,
            "user_daily_limit": self.user_daily_limit,
            "pending_faults": len(self.faults),
            "tweets": len(self.ledger),
            "requests": len(self.requests),
            "in_flight": self.in_flight,
        })


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeX(
        consumer_key=args.consumer_key,
        consumer_secret=args.consumer_secret,
        access_token=args.access_token,
        access_token_secret=args.access_token_secret,
        delay=args.delay,
        fail_ratio=args.fail_ratio,
        rng=random.Random(args.seed),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    url = await fake.start(args.host, args.port)
    print(f"FAKE_X_URL={url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.close()
        print("LEDGER " + json.dumps(fake.texts()), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: run a standalone fake until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.fake_x", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--consumer-key", default="ck")
    parser.add_argument("--consumer-secret", default="cs")
    parser.add_argument("--access-token", default="at")
    parser.add_argument("--access-token-secret", default="ats")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fail-ratio", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
