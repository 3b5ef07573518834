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
import hashlib
import hmac
import itertools
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from aiohttp import web
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from tests.fakes.base import FakeService, command_parser, run_fake
from tests.fakes.base import Fault as BaseFault
from tests.fakes.base import FaultKind as FaultKind

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
class Fault(BaseFault):
    """One injected misbehaviour, consumed by one request.

    Build them with the class methods; a JSON description for ``POST /2/_control`` is
    ``{"kind": "<class method name>", **its keyword arguments}``. A dict body is sent as
    ``application/problem+json``; ``slow`` sleeps on top of ``FakeX.delay``.
    """

    content_type: str = PROBLEM_JSON

    _JSON_TYPE: ClassVar[str] = PROBLEM_JSON
    _KINDS: ClassVar[tuple[str, ...]] = (
        "status", "rate_limited", "server_error_html", "payment_required", "forbidden",
        "bad_request", "cut_before", "cut_after", "slow",
    )

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
    ) -> Self:
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
    def server_error_html(cls, code: int = 503) -> Self:
        """A proxy-style HTML error page (not JSON), e.g. 502/503/504."""
        title = f"{code} Service Temporarily Unavailable"
        html = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return cls.status(code, html, None, "text/html")

    @classmethod
    def payment_required(cls) -> Self:
        """402 as seen when pay-per-use credits run out."""
        body = {"title": "CreditsDepleted", "detail": CREDITS_DETAIL, "status": 402}
        return cls.status(402, body, None, PROBLEM_JSON)

    @classmethod
    def forbidden(
        cls,
        detail: str = OAUTH1_PERMISSIONS_DETAIL,
        type: str = "https://api.twitter.com/2/problems/oauth1-permissions",
    ) -> Self:
        """A 403 that is not the duplicate-content one (default: read-only token)."""
        body = {"title": "Forbidden", "detail": detail, "type": type, "status": 403}
        return cls.status(403, body, None, PROBLEM_JSON)

    @classmethod
    def bad_request(cls, detail: str = "The `text` field is invalid.") -> Self:
        """A 400 ``Invalid Request`` whose ``errors[0].message`` is ``detail``."""
        return cls.status(400, invalid_request_body(detail), None, "application/json")


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


class FakeX(FakeService[Fault, RequestRecord]):
    """The fake server. See the module docstring; all attributes may be changed at any time.
    ``base_url`` is ``http://127.0.0.1:PORT``; the post endpoint is :attr:`tweets_url`.

    Order of handling for each ``POST /2/tweets``: record arrival and concurrency, pop one
    fault (or draw a random one when ``fail_ratio`` > 0), sleep ``delay`` (+ a ``slow``
    fault's seconds), apply a ``status``/``cut_before`` fault; otherwise 401 when
    ``reject_credentials`` or the signature is bad, 400 for a missing text, 403 for a
    duplicate, 429 when ``user_daily_limit`` is spent, else post (201, or ``cut_after``).
    """

    _NAME = "FakeX"
    _fault_type = Fault

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
        super().__init__(delay=delay, clock=clock, fail_ratio=fail_ratio, rng=rng)
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.access_token = access_token
        self.access_token_secret = access_token_secret
        # Advertised in x-rate-limit-* headers of successes; never enforced (use faults).
        self.rate_limit_15min = rate_limit_15min
        # When set, successes carry x-user-limit-24hour-* headers and, once spent, posts
        # get 429 (24-hour remaining 0, 15-minute remaining > 0) until the day resets.
        self.user_daily_limit = user_daily_limit

        self.ledger: list[Tweet] = []
        self._ids = itertools.count(FIRST_TWEET_ID)
        self._day_start: float | None = None

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2/tweets", self._post_tweet)
        app.router.add_get("/2/ledger", self._get_ledger)
        app.router.add_get("/2/_requests", self._get_requests)
        app.router.add_post("/2/_control", self._control)
        return app

    @property
    def tweets_url(self) -> str:
        """The full URL of ``POST /2/tweets``."""
        return self.base_url + "/2/tweets"

    # -- inspection and steering ---------------------------------------------------------

    def texts(self) -> list[str]:
        """The accepted texts, in order."""
        return [t.text for t in self.ledger]

    async def wait_for_tweets(self, n: int, timeout: float) -> list[Tweet]:
        """Wait until the ledger holds at least ``n`` tweets; return a copy of it.

        Raises ``TimeoutError`` naming what did arrive and the last requests' statuses.
        """
        return await self._wait_for(n, timeout, "tweets", lambda: self.ledger)

    # -- handlers ------------------------------------------------------------------------

    def _random_server_error(self) -> Fault:
        return Fault.server_error_html(503)

    def _random_rate_limit(self) -> Fault:
        return Fault.rate_limited(reset_15min=self.clock() + 1)

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

    def _apply_control(self, spec: dict[str, Any]) -> None:
        """``_control``'s own key here: ``user_daily_limit`` (int or null)."""
        if "user_daily_limit" in spec:
            self.user_daily_limit = spec["user_daily_limit"]

    def _control_state(self) -> dict[str, Any]:
        return {
            "user_daily_limit": self.user_daily_limit,
            "pending_faults": len(self.faults),
            "tweets": len(self.ledger),
            "requests": len(self.requests),
            "in_flight": self.in_flight,
        }


def _build(args: argparse.Namespace) -> FakeX:
    return FakeX(
        consumer_key=args.consumer_key,
        consumer_secret=args.consumer_secret,
        access_token=args.access_token,
        access_token_secret=args.access_token_secret,
        delay=args.delay,
        fail_ratio=args.fail_ratio,
        rng=random.Random(args.seed),
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: run a standalone fake until SIGTERM/SIGINT."""
    parser = command_parser("tests.fakes.fake_x", __doc__)
    parser.add_argument("--consumer-key", default="ck")
    parser.add_argument("--consumer-secret", default="cs")
    parser.add_argument("--access-token", default="at")
    parser.add_argument("--access-token-secret", default="ats")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    run_fake(parser, argv, "FAKE_X_URL", _build)


if __name__ == "__main__":
    main()
