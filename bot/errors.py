"""The bot's exceptions, all rooted at :class:`BotError`.

BotError
├── ConfigError          a setting is missing or malformed (the CLI exits 2 with its message)
├── StorageError         the database cannot be used
│   └── SchemaTooNewError  the database was written by a newer version of the bot
└── FeedError            one feed could not be read; the others go on
    ├── FeedFetchError     HTTP status, timeout, connection error, size cap, redirect loop
    └── FeedParseError     the body is not a feed, or is not well-formed enough to read

Errors never carry secrets: they name the setting, never its value when it is a credential.
Errors from the X API are not exceptions of this tree: :mod:`bot.twitter` turns every answer
into a :class:`bot.twitter.Outcome` value, so the dispatcher handles them in one place.
"""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(BotError):
    """A setting is missing or has the wrong form."""


class StorageError(BotError):
    """The database cannot be opened, migrated or written."""


class SchemaTooNewError(StorageError):
    """The database's schema is newer than this code understands."""


class FeedError(BotError):
    """One feed could not be fetched or read."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class FeedFetchError(FeedError):
    """The feed's server did not give us a usable body."""


class FeedGoneError(FeedFetchError):
    """HTTP 410: the feed is gone for good."""


class FeedParseError(FeedError):
    """The body could not be read as RSS, Atom, RDF or JSON Feed."""
