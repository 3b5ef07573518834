"""What the dispatcher hands a network's client (:class:`Delivery`) and what it gets back
(:class:`Outcome`, of an :class:`OutcomeKind`): the one contract between the durable queue and
X, Mastodon and Bluesky alike. Every client has ``async def send(delivery) -> Outcome`` and
never raises for an answer from its network (nor for the lack of one).

A post's ``key`` (:func:`new_key`, a TID) is chosen when its row is written, so it is on disk
before the first attempt and the same on every retry and after every restart: Mastodon gets it
as the ``Idempotency-Key``, Bluesky as the record key (rkey) of the post record.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["DRY_RUN_REASON", "RETRY_4XX", "Card", "Delivery", "Outcome", "OutcomeKind",
           "card_from_json", "card_to_json", "new_key"]

DRY_RUN_REASON = "dry run"  # a dry-run client's "sent": recorded as handled, not posted


class OutcomeKind(StrEnum):
    """What one attempt to post came to (the values are the ``posts_total`` metric's labels).

    sent          the network confirmed: ``remote_id`` holds the new post's id
    duplicate     the network says it has this post already (X's duplicate-content 403, a
                  Bluesky record found under the post's key): settled, never retried
    retry         transient (5xx, non-JSON body, timeout, connection error): back off, retry
    rate_limited  429: close the destination's gate until ``retry_at`` (None: no header said)
    auth          the credentials are wrong, revoked or lack the permission to post
    credits       the account is out of pay-per-use credits (X's 402)
    failed        this text will never be accepted; ``reason`` says why
    """

    SENT = "sent"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    CREDITS = "credits"
    FAILED = "failed"


# A 4xx that is no verdict on the text: 404/405, the endpoint is not where the base URL says
# (a proxy or a setting to fix); 408/409/425, the server's own "try again".
RETRY_4XX = frozenset({404, 405, 408, 409, 425})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt to post came to: its :class:`OutcomeKind`, and what goes with it.

    ``tweet_id`` is the new post's id on its network (a tweet id, a Mastodon status id, a
    Bluesky ``at://`` URI); the name is the one it had when X was the only network."""

    kind: OutcomeKind
    tweet_id: str | None = None
    reason: str = ""
    retry_at: float | None = None
    status: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", OutcomeKind(self.kind))

    @property
    def remote_id(self) -> str | None:
        return self.tweet_id


@dataclass(frozen=True, slots=True)
class Card:
    """A link card (Bluesky's external embed): the article's title, a short description
    and, when the entry has one, its image's URL (fetched, size-capped, at send time)."""

    title: str
    description: str = ""
    image: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to post one post to one destination."""

    post_id: int
    text: str
    key: str = ""  # new_key(), written with the post: the same on every attempt
    attempts: int = 0  # attempts made before this one (> 0: an earlier one may have landed)
    link: str | None = None  # the link the text carries (for Bluesky's facet and card)
    card: Card | None = None
    destination: str = "x"


# -- keys: AT Protocol TIDs ------------------------------------------------------------------

_B32 = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable
_lock = threading.Lock()
_last = 0
_CLOCK_ID = int.from_bytes(os.urandom(2), "big") & 0x3FF


def new_key(now: float | None = None) -> str:
    """A fresh TID: 13 characters, sortable by time, never the same twice in this process.

    53 bits of microseconds since 1970 and a 10-bit clock id, in base32-sortable (the AT
    Protocol's record key for posts). Unique across processes in practice: two processes
    would need the same random clock id and the same microsecond."""
    global _last
    micros = int((time.time() if now is None else now) * 1_000_000)
    with _lock:
        micros = max(micros, _last + 1)
        _last = micros
    value = (micros << 10) | _CLOCK_ID
    chars = []
    for _ in range(13):
        chars.append(_B32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


# -- the card as stored with a post (posts.card) ---------------------------------------------

def card_to_json(link: str | None, card: Card) -> str:
    """What ``posts.card`` holds: the link the text carries and its card."""
    return json.dumps({"link": link, "title": card.title, "description": card.description,
                       "image": card.image}, ensure_ascii=False)


def card_from_json(raw: str | None) -> tuple[str | None, Card | None]:
    """The link and the card :func:`card_to_json` wrote; (None, None) for none or garbage."""
    if not raw:
        return None, None
    try:
        data = json.loads(raw)
        link = data.get("link")
        card = Card(str(data.get("title") or ""), str(data.get("description") or ""),
                    data.get("image") if isinstance(data.get("image"), str) else None)
    except (ValueError, AttributeError, TypeError):
        return None, None
    return (link if isinstance(link, str) else None), card
