"""The Mastodon client: ``POST /api/v1/statuses`` with a bearer token, its answers translated
into :class:`Outcome` values the dispatcher acts on (its kinds are :class:`OutcomeKind`), with
what to tell the operator when posting is broken (:attr:`MastodonClient.broken_help`), and the
instance's length limits (:meth:`MastodonClient.limits`) for the composer.

Exactly once, and where it stops
--------------------------------
Every post is sent with ``Idempotency-Key: <Delivery.key>``. The key is written with the post
before its first attempt, so it is the same on every retry and after every restart. Mastodon
remembers the key per account (``idempotency:status:<account>:<key>`` in Redis) and, when it
sees it again, answers 200 with the status it made the first time: same id, nothing posted
twice, even when the first attempt's answer was lost on the way back (a timeout, a cut
connection, a 502 from a proxy after Mastodon had posted). That is stronger than X's
duplicate-content 403 (:mod:`bot.twitter`), which only recognises an identical text and gives
no id back: here the retry is recognised by its key whatever the text, and gets the id.

Limits of the guarantee, all Mastodon's:

- the key is kept for **one hour** (``setex 3600``) from when the status was made: a retry
  after that posts again. The dispatcher's back-off (seconds, capped at 15 minutes) keeps the
  retry of an ambiguous attempt inside that hour; a post parked longer (the gate closed on a
  429 or a revoked token for an afternoon) may appear twice if its lost attempt had landed;
- while the first request with a key is still being processed, a second one with the same key
  gets 503 (Mastodon holds a lock): a RETRY, and the next try is answered from the key;
- if someone deletes the status within that hour, a retry with its key gets 404
  ``Record not found``: this client calls that DUPLICATE (the post went out, a human took it
  down: it is not posted again) when an earlier attempt was made, else RETRY;
- the key lives in the instance's Redis: an instance that loses Redis forgets it.

Outcomes
--------
- 2xx with a status ``id`` → SENT (``tweet_id`` = the status id);
- 401 (token invalid, revoked, expired) and 403 (no ``write:statuses`` scope; account
  disabled, suspended, unconfirmed or not yet approved), whatever the body → AUTH: no post can
  go out until a human acts (:attr:`MastodonClient.broken_help` says what to do);
- 422 from Mastodon (text too long, blank, ...) and any other 4xx with a JSON body → FAILED,
  with Mastodon's ``error``;
- 429 → RATE_LIMITED, ``retry_at`` from ``X-RateLimit-Reset`` (ISO 8601, or epoch seconds),
  else ``Retry-After``; None when neither names a future time;
- 5xx, 3xx, 404/405/408/409/425, a 4xx whose body is not JSON (not Mastodon's verdict on the
  text), a 2xx without an id or not JSON, a timeout, a connection error → RETRY.

Reasons for an answer start with ``HTTP <status>: `` and quote Mastodon's ``error`` (or at most
120 characters of a body that is not JSON, an HTML page's ``<title>``). The access token never
appears in a reason, a log line or a repr: anything quoted from an answer is scrubbed of it.
Redirects are not followed (a POST would become a GET, and the token would travel with it):
a 3xx says where ``MASTODON_BASE_URL`` should point.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from yarl import URL

from bot.delivery import RETRY_4XX, Delivery, Outcome, OutcomeKind
from bot.text import non_json_reason
from bot.times import first_future, retry_after

__all__ = ["DEFAULT_MAX_CHARACTERS", "DEFAULT_URL_CHARACTERS", "MastodonClient",
           "rate_limit_reset"]

log = logging.getLogger(__name__)

DEFAULT_MAX_CHARACTERS = 500  # Mastodon's own default, when the instance does not say
DEFAULT_URL_CHARACTERS = 23  # characters_reserved_per_url
MAX_SANE_LIMIT = 100_000  # a number above this is not a limit we believe
VISIBILITIES = frozenset({"public", "unlisted", "private", "direct"})

_MAX_BODY = 1 << 20  # a status or an instance document is a few kB
_MESSAGE = 300  # characters kept of Mastodon's own error message
# 404/405: the endpoint is not where MASTODON_BASE_URL says (a proxy or a setting to fix), not
# a verdict on this text; 408/409/425: "try again" (Mastodon's own for a held lock is 503).
_RECORD_NOT_FOUND = "record not found"
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # visible ASCII: a token or key as a header value


def _parse_reset(value: str | None, now: float) -> float | None:
    """``X-RateLimit-Reset`` as epoch seconds: Mastodon's ISO 8601 timestamp
    (``2026-11-30T20:05:00.000000Z``), or a number: epoch seconds, or (below 10⁹, as the IETF
    RateLimit draft and some servers send it) seconds from now. None when unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or number < 0:
            return None
        return number if number >= 1e9 else now + number
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def rate_limit_reset(headers: Any, now: float) -> float | None:
    """When a 429's wall ends, as epoch seconds; None when no header names a future time.

    ``X-RateLimit-Reset`` first (Mastodon's Rack::Attack and per-account limits send it, with
    ``X-RateLimit-Remaining: 0``), else ``Retry-After`` (seconds or an HTTP date: a proxy's).
    A reset that is not in the future is no answer (a zero wait would hammer the instance).
    """
    return first_future(now, (_parse_reset(headers.get("X-RateLimit-Reset"), now),
                              retry_after(headers.get("Retry-After"), now)))


def _json(body: bytes) -> Any:
    """The body as JSON; ``...`` (Ellipsis) when it is not JSON at all."""
    try:
        return json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        return ...


def _message(payload: Any) -> str | None:
    """Mastodon's error message from a JSON body (``error``, plus an OAuth
    ``error_description``), or None when the JSON is not of that shape."""
    if not isinstance(payload, dict):
        return None
    parts = [str(payload[k]).strip() for k in ("error", "error_description")
             if isinstance(payload.get(k), str | int | float) and str(payload[k]).strip()]
    return ": ".join(parts)[:_MESSAGE] if parts else None


def _number(value: Any) -> int | None:
    """A limit as Mastodon would send it: a positive integer within reason."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 < value <= MAX_SANE_LIMIT:
        return value
    return None


async def _read(response: aiohttp.ClientResponse, cap: int = _MAX_BODY) -> bytes:
    """At most ``cap`` bytes of the body (the rest is dropped with the connection)."""
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        chunk = await response.content.read(cap - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class MastodonClient:
    """Posts a status and says what came of it. Never raises for an answer from the instance
    (nor for the lack of one): every call ends in an :class:`Outcome` within ``timeout``
    seconds. ``env_suffix`` is the suffix of this destination's settings (``__NEWS`` for a second
    account), used only in what the operator is told."""

    def __init__(self, *, base_url: str, access_token: str, visibility: str = "public",
                 session: aiohttp.ClientSession, timeout: float = 30.0,
                 clock: Callable[[], float] | None = None, env_suffix: str = "") -> None:
        self.base_url = base_url.strip().rstrip("/")
        self._token = access_token.strip()
        self.visibility = visibility
        self.session = session
        self.timeout = timeout
        self.clock = clock or time.time
        self.env_suffix = env_suffix
        token_var = f"MASTODON_ACCESS_TOKEN{env_suffix}"
        self._token_var = token_var
        self._token_ok = bool(_HEADER_SAFE.fullmatch(self._token))
        self.broken_help: dict[OutcomeKind, str] = {
            OutcomeKind.AUTH: (
                f"Mastodon rejected the access token (401) or what it may do (403): check "
                f"{token_var} and MASTODON_BASE_URL{env_suffix} (the instance the token was "
                "made on). The token needs the write:statuses scope: on the instance, "
                "Preferences → Development → New application, tick write:statuses, save, "
                "and copy \"Your access token\". A 403 also means the account is disabled, "
                "suspended, or not yet confirmed or approved: see the instance's e-mail"
            ),
        }

    def __repr__(self) -> str:
        return (f"MastodonClient(base_url={self._safe_url()!r}, "
                f"visibility={self.visibility!r}, timeout={self.timeout:g})")

    # -- helpers -------------------------------------------------------------------------

    def _safe_url(self) -> str:
        """The base URL without a password in it (``https://user:***@host``)."""
        try:
            url = URL(self.base_url)
        except ValueError:
            return "<invalid URL>"
        return str(url.with_password("***")) if url.password else self.base_url

    def _scrub(self, text: str) -> str:
        """``text`` without the token (an answer may quote our request back at us)."""
        if len(self._token) >= 4:
            text = text.replace(self._token, "***")
        password = None
        try:
            password = URL(self.base_url).password
        except ValueError:
            pass
        if password and len(password) >= 4:
            text = text.replace(password, "***")
        return text

    def _outcome(self, kind: OutcomeKind, reason: str, status: int | None = None,
                 **kwargs: Any) -> Outcome:
        return Outcome(kind, reason=self._scrub(reason), status=status, **kwargs)

    # -- posting -------------------------------------------------------------------------

    async def send(self, delivery: Delivery) -> Outcome:
        """Post ``delivery.text`` with ``delivery.key`` as the ``Idempotency-Key`` (a
        delivery without a key, or with one that cannot be a header value, goes without one:
        then nothing but luck keeps a retry after a lost answer from posting twice)."""
        if not self._token_ok:
            return Outcome(OutcomeKind.AUTH, reason=f"{self._token_var} is empty or holds "
                           "spaces or control characters")
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if delivery.key and _HEADER_SAFE.fullmatch(delivery.key):
            headers["Idempotency-Key"] = delivery.key
        payload = {"status": delivery.text, "visibility": self.visibility}
        try:
            async with asyncio.timeout(self.timeout):
                async with self.session.post(f"{self.base_url}/api/v1/statuses", json=payload,
                                             headers=headers, allow_redirects=False) as response:
                    body = await _read(response)
                    status = response.status
                    location = response.headers.get("Location", "")
                    answer_headers = response.headers.copy()
        except TimeoutError:
            return self._outcome(OutcomeKind.RETRY,
                                 f"no answer from Mastodon within {self.timeout:g} s")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError: aiohttp's InvalidURL and its refusal of a malformed header value
            return self._outcome(OutcomeKind.RETRY,
                                 f"connection error: {type(exc).__name__}: {exc}")
        return self._judge(status, body, answer_headers, location, delivery)

    def _judge(self, status: int, body: bytes, headers: Any, location: str,
               delivery: Delivery) -> Outcome:
        payload = _json(body)
        message = _message(payload)
        is_json = payload is not ...
        if is_json:
            said = message or "unexpected JSON answer"
        else:
            said = non_json_reason(body)
        reason = f"HTTP {status}: {said}"

        if 200 <= status < 300:
            status_id = payload.get("id") if isinstance(payload, dict) else None
            if isinstance(status_id, str | int) and not isinstance(status_id, bool) \
                    and str(status_id).strip():
                return Outcome(OutcomeKind.SENT, tweet_id=str(status_id).strip(), status=status)
            if is_json:
                reason = f"HTTP {status}: answer without a status id"
            return self._outcome(OutcomeKind.RETRY, reason, status)
        if 300 <= status < 400:
            where = f"redirected to {location[:200]}" if location else "redirected"
            return self._outcome(
                OutcomeKind.RETRY, f"HTTP {status}: {where}: set MASTODON_BASE_URL"
                f"{self.env_suffix} to the instance's own https:// address", status)
        if status == 429:
            return self._outcome(OutcomeKind.RATE_LIMITED, reason, status,
                                 retry_at=rate_limit_reset(headers, self.clock()))
        if status in (401, 403):
            return self._outcome(OutcomeKind.AUTH, reason, status)
        if (status == 404 and delivery.attempts > 0 and message is not None
                and message.lower() == _RECORD_NOT_FOUND):
            # The key names a status made by an earlier attempt and deleted since.
            return self._outcome(
                OutcomeKind.DUPLICATE, f"{reason}: the status an earlier attempt made under "
                "this Idempotency-Key has been deleted; not posting it again", status)
        if status >= 500 or status in RETRY_4XX or not is_json or status < 400:
            return self._outcome(OutcomeKind.RETRY, reason, status)
        return self._outcome(OutcomeKind.FAILED, reason, status)

    # -- the instance's limits -----------------------------------------------------------

    async def check(self) -> Outcome | None:
        """At start-up: an AUTH outcome when the instance says the token is not valid
        (``GET /api/v1/apps/verify_credentials`` answers 401; any token may ask it, whatever
        its scopes), so the operator hears of it before the first article; None otherwise
        (valid, or no clear answer: the first post finds out). Never raises."""
        if not self._token_ok:
            return Outcome(OutcomeKind.AUTH, reason=f"{self._token_var} is empty or holds "
                           "spaces or control characters")
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            async with asyncio.timeout(self.timeout):
                async with self.session.get(f"{self.base_url}/api/v1/apps/verify_credentials",
                                            headers=headers, allow_redirects=False) as response:
                    body = await _read(response)
                    status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            return None
        if status != 401:
            return None
        said = _message(_json(body)) or "unauthorized"
        return self._outcome(OutcomeKind.AUTH, f"HTTP 401: {said}", 401)

    async def limits(self) -> tuple[int, int, str | None]:
        """``(max_characters, characters_reserved_per_url, problem)`` of the instance.

        From ``GET /api/v2/instance`` (Mastodon 4.0+), else ``GET /api/v1/instance``
        (``configuration.statuses`` since 3.x; top-level ``max_toot_chars`` on older forks
        such as glitch-soc and Pleroma). When neither names believable numbers: Mastodon's
        defaults (500, 23) and ``problem``, a short explanation for the operator. Never
        raises; the whole call takes at most ``timeout`` seconds."""
        problems: list[str] = []
        try:
            async with asyncio.timeout(self.timeout):
                for path in ("/api/v2/instance", "/api/v1/instance"):
                    found, problem = await self._read_limits(path)
                    if found is not None:
                        return found[0], found[1], None
                    problems.append(f"GET {path}: {problem}")
        except TimeoutError:
            problems.append(f"no answer within {self.timeout:g} s")
        problem = self._scrub(
            f"could not read the instance's post limits, assuming {DEFAULT_MAX_CHARACTERS} "
            f"characters and {DEFAULT_URL_CHARACTERS} per link ({'; '.join(problems)})")
        log.debug("mastodon_limits_default base_url=%s problem=%r", self._safe_url(), problem)
        return DEFAULT_MAX_CHARACTERS, DEFAULT_URL_CHARACTERS, problem

    async def _read_limits(self, path: str) -> tuple[tuple[int, int] | None, str]:
        try:
            # No token: the instance document is public, and the token stays home.
            async with self.session.get(self.base_url + path, allow_redirects=False,
                                        headers={"Accept": "application/json"}) as response:
                body = await _read(response)
                status = response.status
                location = response.headers.get("Location", "")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, f"unreachable ({type(exc).__name__}: {exc})"
        if 300 <= status < 400:
            return None, f"HTTP {status} redirect to {location[:200] or '?'}"
        payload = _json(body)
        if status != 200:
            said = (_message(payload) or "") if payload is not ... else non_json_reason(body)
            return None, f"HTTP {status}" + (f" ({said})" if said else "")
        if not isinstance(payload, dict):
            said = non_json_reason(body) if payload is ... else "JSON, not an object"
            return None, f"not a Mastodon instance document ({said})"
        statuses = payload.get("configuration")
        statuses = statuses.get("statuses") if isinstance(statuses, dict) else None
        if isinstance(statuses, dict) and "max_characters" in statuses:
            raw_max = statuses.get("max_characters")
            raw_url = statuses.get("characters_reserved_per_url", DEFAULT_URL_CHARACTERS)
        elif "max_toot_chars" in payload:
            raw_max, raw_url = payload.get("max_toot_chars"), DEFAULT_URL_CHARACTERS
        else:
            return None, "no configuration.statuses.max_characters in the answer"
        max_characters, per_url = _number(raw_max), _number(raw_url)
        if max_characters is None or per_url is None:
            shown = json.dumps([raw_max, raw_url])[:80]
            return None, f"unbelievable limits {shown}"
        return (max_characters, per_url), ""
