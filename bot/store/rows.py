"""The rows the store hands out (:class:`FeedRow`, :class:`Post`, :class:`DuePass`), what it
is handed (:class:`NewPost`), and the names of the feeds table that may be written."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from bot.models import Entry
from bot.store.db import check_names

DRY_RUN_NOTE = "dry run: not posted"  # a dry run's "sent" posts carry it as their note
POST_STATES = ("pending", "sending", "sent", "failed")
FEED_COLUMNS = frozenset({
    "title", "etag", "last_modified", "last_status", "last_error", "consecutive_failures",
    "last_polled_at", "last_success_at", "next_poll_at", "gone", "fetch_url", "baselined",
})
FEED_FLAGS = frozenset({"active", "paused", "gone"})  # Store.set_feed_flag
FEED_SETTINGS = frozenset({  # Store.add_feed
    "template", "hashtags", "include_re", "exclude_re", "backfill", "mentions", "destinations"})


def check_feed_columns(values: dict[str, object]) -> None:
    check_names("feed columns", values, FEED_COLUMNS)


@dataclass(slots=True)  # the worker keeps one per feed and updates it after each poll
class FeedRow:
    id: int
    url: str
    title: str
    origin: str
    active: bool
    paused: bool
    gone: bool
    baselined: bool
    etag: str | None
    last_modified: str | None
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    last_polled_at: float | None
    last_success_at: float | None
    next_poll_at: float
    template: str | None
    hashtags: str | None
    include_re: str | None
    exclude_re: str | None
    backfill: int | None
    fetch_url: str | None = None
    mentions: str | None = None  # "keep" or "neutralise"; None: MENTIONS from the environment
    destinations: str | None = None  # "x,mastodon" (`feeds add --to`); None: every one configured

    @property
    def destination_names(self) -> tuple[str, ...] | None:
        """The destinations this feed names (``feeds add --to``); None: all configured."""
        if not self.destinations:
            return None
        return tuple(name for name in self.destinations.split(",") if name)

    @property
    def location(self) -> str:
        """Where to fetch it: the URL a permanent redirect led to, else its own."""
        return self.fetch_url or self.url

    @property
    def state(self) -> str:
        if self.gone:
            return "gone"
        if self.paused:
            return "paused"
        if not self.active:
            return "inactive"
        if self.consecutive_failures:
            return "failing"
        return "ok" if self.last_success_at else "new"


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    entry_id: int
    text: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    tweet_id: str | None
    created_at: float
    sent_at: float | None
    feed_url: str = ""
    link: str | None = None
    destination: str = "x"
    key: str | None = None  # bot.delivery.new_key(), written with the row
    card: str | None = None  # JSON of a bot.delivery.Card (Bluesky's link card)


@dataclass(frozen=True, slots=True)
class DuePass:
    """What one dispatcher pass learns in one trip to the database
    (:meth:`bot.store.Store.claim_due`)."""

    claimed: list[Post]  # as they were before the claim (attempts not yet counted)
    pending: int  # posts still pending after it
    next_due_at: float | None  # when the earliest of those is due


@dataclass(frozen=True, slots=True)
class Outgoing:
    """The post one destination is owed for an entry: its ``text``, or the ``error`` that
    says why there is none (recorded as a ``failed`` post); ``card`` is JSON or None."""

    destination: str
    text: str | None
    error: str | None = None
    card: str | None = None


@dataclass(frozen=True, slots=True)
class NewPost:
    """An entry to record together with the posts it is owed.

    ``outgoing``: one :class:`Outgoing` per destination. Without it, ``text`` and ``error``
    describe the one post for the destination ``x`` (as before there were destinations).
    Nothing at all (no text, no error, no outgoing) records the entry as seen, posting
    nothing."""

    entry: Entry
    text: str | None = None
    error: str | None = None
    outgoing: tuple[Outgoing, ...] | None = None

    def posts(self) -> tuple[Outgoing, ...]:
        if self.outgoing is not None:
            return self.outgoing
        if self.text is None and self.error is None:
            return ()
        return (Outgoing("x", self.text, self.error),)


def feed_from_row(row: sqlite3.Row) -> FeedRow:
    return FeedRow(
        id=row["id"], url=row["url"], title=row["title"], origin=row["origin"],
        active=bool(row["active"]), paused=bool(row["paused"]), gone=bool(row["gone"]),
        baselined=bool(row["baselined"]), etag=row["etag"], last_modified=row["last_modified"],
        last_status=row["last_status"], last_error=row["last_error"],
        consecutive_failures=row["consecutive_failures"], last_polled_at=row["last_polled_at"],
        last_success_at=row["last_success_at"], next_poll_at=row["next_poll_at"],
        template=row["template"], hashtags=row["hashtags"], include_re=row["include_re"],
        exclude_re=row["exclude_re"], backfill=row["backfill"], fetch_url=row["fetch_url"],
        mentions=row["mentions"], destinations=row["destinations"],
    )


def post_from_row(row: sqlite3.Row) -> Post:
    keys = row.keys()
    return Post(
        id=row["id"], entry_id=row["entry_id"], text=row["text"], state=row["state"],
        attempts=row["attempts"], next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"], tweet_id=row["tweet_id"], created_at=row["created_at"],
        sent_at=row["sent_at"],
        feed_url=row["feed_url"] if "feed_url" in keys else "",
        link=row["link"] if "link" in keys else None,
        destination=row["destination"], key=row["post_key"], card=row["card"],
    )
