"""The X client: tweepy's AsyncClient, pointed at ``TWITTER_API_BASE_URL``, its answers
translated into :class:`Outcome` values the dispatcher acts on (its kinds are
:class:`OutcomeKind`), with what to tell the operator when posting is broken (:data:`BROKEN_HELP`).

tweepy hard-codes ``https://api.twitter.com`` in ``AsyncClient.request`` and opens a session
per request when none is set; :class:`_Client` overrides ``request`` to use our base URL (the
OAuth 1.0a signature covers the URL actually requested) and one shared session, and reads
error bodies that are not JSON (an HTML 502 from a proxy) instead of crashing on them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import tweepy
from oauthlib.oauth1 import Client as OAuthClient
from tweepy.asynchronous import AsyncClient
from yarl import URL

from bot.delivery import DRY_RUN_REASON, RETRY_4XX, Delivery, Outcome, OutcomeKind
from bot.text import non_json_reason
from bot.times import epoch_header, first_future, retry_after

__all__ = ["BROKEN_HELP", "DRY_RUN_REASON", "DryRunClient", "Outcome", "OutcomeKind", "XClient",
           "rate_limit_reset"]

log = logging.getLogger(__name__)

# What the operator has to do when X's answer means that no post can go out.
BROKEN_HELP = {
    OutcomeKind.AUTH: "X rejected the credentials (401) or their permission (403): check "
    "TWITTER_API_KEY, TWITTER_API_SECRET, TWITTER_ACCESS_TOKEN, TWITTER_ACCESS_TOKEN_SECRET and "
    "that the app has read+write permission (\"Read and write\" in its User authentication "
    "settings); after changing it, regenerate the Access Token and Secret: tokens made before "
    "stay read-only",
    OutcomeKind.CREDITS: "X says the account is out of credits (402): add credits in the "
    "developer portal",
}


def rate_limit_reset(headers: Any, now: float) -> float | None:
    """When a 429's wall ends, as epoch seconds; None when no header names a future time.

    In order: a spent 24-hour budget's reset (user, then app), since waiting for the
    15-minute reset would only retry into the same wall; else ``x-rate-limit-reset``; else
    ``Retry-After`` (seconds or an HTTP date). A reset that is not in the future is no answer
    (a zero wait would hammer X): the next header is tried, and None means "back off".
    """
    candidates: list[float | None] = []
    for scope in ("user", "app"):
        remaining = epoch_header(headers, f"x-{scope}-limit-24hour-remaining")
        if remaining is not None and remaining <= 0:
            candidates.append(epoch_header(headers, f"x-{scope}-limit-24hour-reset"))
    candidates.append(epoch_header(headers, "x-rate-limit-reset"))
    candidates.append(retry_after(headers.get("retry-after"), now))
    return first_future(now, candidates)


_ERRORS: dict[int, type[tweepy.HTTPException]] = {
    400: tweepy.BadRequest, 401: tweepy.Unauthorized, 403: tweepy.Forbidden,
    404: tweepy.NotFound, 429: tweepy.TooManyRequests,
}


def _error_payload(body: bytes) -> dict[str, Any]:
    """An error body as tweepy's exceptions want it: X's problem+json, or a stand-in whose
    ``detail`` quotes the start of whatever else came (an HTML page from a proxy)."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        errors = payload.get("errors")
        if errors is None or (isinstance(errors, list)
                              and all(isinstance(e, dict | str) for e in errors)):
            return payload
    return {"detail": non_json_reason(body)}


class _Client(AsyncClient):  # type: ignore[misc]
    def __init__(self, *args: Any, base_url: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base_url = base_url.rstrip("/")

    async def request(self, method: str, route: str, params: Any = None, json: Any = None,
                      user_auth: bool = False) -> Any:
        headers = {"User-Agent": self.user_agent}
        if json is not None:
            headers["Content-Type"] = "application/json"
        url = self.base_url + route
        oauth = OAuthClient(self.consumer_key, self.consumer_secret, self.access_token,
                            self.access_token_secret)
        url = str(URL(url).with_query(sorted((params or {}).items())))
        url, headers, _ = oauth.sign(url, method, headers=headers)
        before, _, query = url.partition("?")
        target = URL(f"{before}?{query.replace(':', '%3A')}" if query else before, encoded=True)
        # The body is read inside the block, so the connection goes back to the pool (or,
        # when a timeout cancels us half-way, is closed) before we return.
        async with self.session.request(method, target, json=json, headers=headers) as response:
            body = await response.read()
        if 200 <= response.status < 300:
            return response
        exc_type = _ERRORS.get(response.status)
        if exc_type is None:
            exc_type = tweepy.TwitterServerError if response.status >= 500 else tweepy.HTTPException
        raise exc_type(response, response_json=_error_payload(body))


def _detail(exc: tweepy.HTTPException) -> str:
    messages = [str(m) for m in exc.api_messages if m]
    status = getattr(exc.response, "status", "?")
    return f"HTTP {status}: " + ("; ".join(messages) if messages else str(exc).splitlines()[0])


class XClient:
    """Posts a text and says what came of it. Never raises for an answer from X (nor for
    the lack of one): every call ends in an :class:`Outcome` within ``timeout`` seconds."""

    def __init__(self, *, api_key: str, api_secret: str, access_token: str,
                 access_token_secret: str, base_url: str, session: aiohttp.ClientSession,
                 timeout: float = 30.0, clock: Callable[[], float] | None = None) -> None:
        self._client = _Client(consumer_key=api_key, consumer_secret=api_secret,
                               access_token=access_token, access_token_secret=access_token_secret,
                               base_url=base_url)
        self._client.session = session
        self.timeout = timeout
        self.clock = clock or time.time

    async def send(self, delivery: Delivery) -> Outcome:
        return await self.post(delivery.text)

    async def post(self, text: str) -> Outcome:
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.create_tweet(text=text, user_auth=True)
        except tweepy.TooManyRequests as exc:
            return Outcome(OutcomeKind.RATE_LIMITED, reason=_detail(exc), status=429,
                           retry_at=rate_limit_reset(exc.response.headers, self.clock()))
        except tweepy.Unauthorized as exc:
            return Outcome(OutcomeKind.AUTH, reason=_detail(exc), status=401)
        except tweepy.Forbidden as exc:
            messages = [str(m).lower() for m in exc.api_messages]
            if any("duplicate content" in m for m in messages):
                return Outcome(OutcomeKind.DUPLICATE, reason=_detail(exc), status=403)
            if any("oauth1 app permissions" in m for m in messages):
                # a read-only token: no post can go out until someone acts; keep them all
                return Outcome(OutcomeKind.AUTH, reason=_detail(exc), status=403)
            return Outcome(OutcomeKind.FAILED, reason=_detail(exc), status=403)
        except tweepy.BadRequest as exc:
            return Outcome(OutcomeKind.FAILED, reason=_detail(exc), status=400)
        except tweepy.TwitterServerError as exc:
            return Outcome(OutcomeKind.RETRY, reason=_detail(exc), status=exc.response.status)
        except tweepy.HTTPException as exc:
            status = getattr(exc.response, "status", None)
            if status == 402:
                return Outcome(OutcomeKind.CREDITS, reason=_detail(exc), status=402)
            if status in RETRY_4XX or status is None or not 400 <= status < 500:
                return Outcome(OutcomeKind.RETRY, reason=_detail(exc), status=status)
            return Outcome(OutcomeKind.FAILED, reason=_detail(exc), status=status)
        except TimeoutError:
            return Outcome(OutcomeKind.RETRY, reason=f"no answer from X within {self.timeout:g} s")
        except aiohttp.ContentTypeError as exc:  # a 2xx whose body is not JSON
            return Outcome(OutcomeKind.RETRY, reason=f"unreadable answer from X: {exc.message}",
                           status=exc.status or None)
        except (aiohttp.ClientError, OSError) as exc:
            return Outcome(OutcomeKind.RETRY,
                           reason=f"connection error: {type(exc).__name__}: {exc}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not X's shape
            return Outcome(OutcomeKind.RETRY,
                           reason=f"unreadable answer from X: {type(exc).__name__}")
        data = response.data if response is not None else None
        tweet_id = str(data.get("id")) if isinstance(data, dict) and data.get("id") else None
        if tweet_id is None:
            return Outcome(OutcomeKind.RETRY, reason="X answered 2xx without a tweet id")
        return Outcome(OutcomeKind.SENT, tweet_id=tweet_id, status=201)




class DryRunClient:
    """DRY_RUN: do everything but post; print the text that would be posted, and where."""

    def __init__(self, destination: str = "x") -> None:
        self.destination = destination

    async def send(self, delivery: Delivery) -> Outcome:
        return await self.post(delivery.text)

    async def post(self, text: str) -> Outcome:
        log.debug("dry_run_post destination=%s text=%r", self.destination, text)
        where = "tweet" if self.destination == "x" else f"post to {self.destination}"
        print(f"[dry run] would {where}: {text}", flush=True)
        return Outcome(OutcomeKind.SENT, tweet_id=None, reason=DRY_RUN_REASON)
