"""Settings, read once from an environment mapping, validated, frozen.

``Settings.from_env(mapping)`` takes any mapping (tests pass a dict); the CLI passes
``os.environ`` merged over a ``.env`` file (the real environment wins). Every problem is
collected and reported at once, each naming the variable and the form it expects; a
credential's value is never echoed.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar
from urllib.parse import urlsplit

from bot.compose import compose, validate_template
from bot.converters import (
    DAY,
    HOUR,
    LOG_LEVELS,
    MAX_FEED_BYTES_LIMIT,
    MENTION_MODES,
    MINUTE,
    _base_url,
    _bool,
    _count,
    _duration,
    _hashtags,
    _log_format,
    _log_level,
    _money,
    _nonempty,
    _optional_count,
    _optional_money,
    _port,
    _size,
    mentions_mode,
)
from bot.destinations import (
    SECRETS,
    SPECS,
    Destination,
    app_password_warning,
    read_destinations,
    setting_names,
)
from bot.environment import NEAR_MISS, Environment, _near_misses, _unknown_settings
from bot.errors import ConfigError
from bot.invocation import command
from bot.models import Entry

__all__ = [  # what bot.config has always offered, some of it now from bot.converters and
    # bot.environment (and bot.cli imports _hashtags from here)
    "CREDENTIALS",
    "DAY",
    "DRY_RUN_DATABASE",
    "HOUR",
    "LOG_LEVELS",
    "MAX_FEED_BYTES_LIMIT",
    "MENTION_MODES",
    "MINUTE",
    "NEAR_MISS",
    "SAMPLE_ENTRY",
    "Environment",
    "Settings",
    "_hashtags",
    "check_feed_url",
    "check_template",
    "mentions_mode",
    "split_feed_urls",
]

T = TypeVar("T")

CREDENTIALS = (
    "TWITTER_API_KEY",
    "TWITTER_API_SECRET",
    "TWITTER_ACCESS_TOKEN",
    "TWITTER_ACCESS_TOKEN_SECRET",
)
_DESTINATION_VARS = frozenset(b for spec in SPECS.values()
                              for b in (*spec.required, *spec.optional))
DRY_RUN_DATABASE = "bot.dry-run.sqlite3"  # DRY_RUN's database when DATABASE_PATH is not set


def split_feed_urls(value: str) -> list[str]:
    """Feed URLs separated by commas, spaces or newlines; duplicates dropped, order kept."""
    urls = [u for u in re.split(r"[\s,]+", value.strip()) if u]
    return list(dict.fromkeys(urls))


def check_feed_url(url: str) -> str | None:
    """Return why ``url`` is not a feed URL we can poll, or None if it is fine."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    if parts.scheme == "sqlite":
        from bot.blogdb import parse_blog_db_url

        try:
            parse_blog_db_url(url)
        except ConfigError as exc:
            return str(exc)
        return None
    return "expected an http(s):// URL, or sqlite:///path/to/blog.db?table=posts"


@dataclass(frozen=True, slots=True)
class Settings:
    feed_urls: tuple[str, ...] = ()
    database_path: str = "bot.sqlite3"
    poll_interval: float = 300.0
    twitter_api_key: str = ""
    twitter_api_secret: str = ""
    twitter_access_token: str = ""
    twitter_access_token_secret: str = ""
    twitter_api_base_url: str = "https://api.twitter.com"
    tweet_template: str = "{title} {url}"
    hashtags: str = ""
    mentions: str = "neutralise"
    dry_run: bool = False
    backfill: int = 0
    max_concurrent_posts: int = 4
    max_posts_per_day: int | None = None
    x_cost_per_post: float = 0.20  # USD: X's pay-per-use rate for a post with a URL (2026)
    x_max_spend_per_month: float | None = None  # USD over 30 days; None: no cap
    max_post_age: float = 86400.0
    post_timeout: float = 30.0
    auth_retry_interval: float = 300.0
    feed_timeout: float = 30.0
    max_feed_bytes: int = 10 * 1024 * 1024
    max_concurrent_fetches: int = 20
    max_fetches_per_host: int = 2
    max_backoff: float = 6 * 3600.0
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"
    log_format: str = "text"
    shutdown_grace: float = 10.0
    parse_processes: int = 0
    # the accounts to post to (bot.destinations): X, Mastodon, Bluesky, named ones
    destinations: tuple[Destination, ...] = ()
    # what looked wrong but was not an error (a setting's name misspelt): said at start-up
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __repr__(self) -> str:  # never print secrets
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.upper() in SECRETS:
                value = "***" if value else ""
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def has_credentials(self) -> bool:
        """Whether some destination is configured (X, Mastodon or Bluesky)."""
        return bool(self.destinations)

    @property
    def outlets(self) -> tuple[Destination, ...]:
        """Where posts go: the configured destinations; a dry run without any gets ``x``
        (it prints what would be tweeted, as it always did)."""
        if self.destinations or not self.dry_run:
            return self.destinations
        return (Destination("x", "x"),)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, require_feeds: bool = True,
                 require_credentials: bool = True) -> Settings:
        reader = _Reader(env)
        d = cls()
        dry_run = reader.get("DRY_RUN", _bool, d.dry_run)
        values: dict[str, Any] = dict(
            feed_urls=tuple(reader.get("FEED_URLS", _feed_urls, ())),
            # a dry run keeps its own database: trying never changes what a real run does later
            database_path=reader.get("DATABASE_PATH", _nonempty,
                                     DRY_RUN_DATABASE if dry_run else d.database_path),
            poll_interval=reader.get("POLL_INTERVAL", _duration(0, 7 * DAY), d.poll_interval),
            twitter_api_base_url=reader.get("TWITTER_API_BASE_URL", _base_url,
                                            d.twitter_api_base_url),
            tweet_template=reader.get("TWEET_TEMPLATE", _template, d.tweet_template),
            hashtags=reader.get("HASHTAGS", _hashtags, d.hashtags),
            mentions=reader.get("MENTIONS", mentions_mode, d.mentions),
            dry_run=dry_run,
            backfill=reader.get("BACKFILL", _count(0, 1000), d.backfill),
            max_concurrent_posts=reader.get("MAX_CONCURRENT_POSTS", _count(1, 100),
                                            d.max_concurrent_posts),
            max_posts_per_day=reader.get("MAX_POSTS_PER_DAY", _optional_count(1_000_000), None),
            x_cost_per_post=reader.get("X_COST_PER_POST", _money(0.0, 100.0), d.x_cost_per_post),
            x_max_spend_per_month=reader.get("X_MAX_SPEND_PER_MONTH", _optional_money(1_000_000.0),
                                             None),
            max_post_age=reader.get("MAX_POST_AGE", _duration(0, 7 * DAY), d.max_post_age),
            post_timeout=reader.get("POST_TIMEOUT", _duration(0, 10 * MINUTE), d.post_timeout),
            auth_retry_interval=reader.get("AUTH_RETRY_INTERVAL", _duration(0, DAY),
                                           d.auth_retry_interval),
            feed_timeout=reader.get("FEED_TIMEOUT", _duration(0, 10 * MINUTE), d.feed_timeout),
            max_feed_bytes=reader.get("MAX_FEED_BYTES", _size, d.max_feed_bytes),
            max_concurrent_fetches=reader.get("MAX_CONCURRENT_FETCHES", _count(1, 1000),
                                              d.max_concurrent_fetches),
            max_fetches_per_host=reader.get("MAX_FETCHES_PER_HOST", _count(1, 100),
                                            d.max_fetches_per_host),
            max_backoff=reader.get("MAX_FEED_BACKOFF", _duration(0, 7 * DAY), d.max_backoff),
            http_host=reader.get("HTTP_HOST", _nonempty, d.http_host),
            http_port=reader.get("HTTP_PORT", _port, d.http_port),
            log_level=reader.get("LOG_LEVEL", _log_level, d.log_level),
            log_format=reader.get("LOG_FORMAT", _log_format, d.log_format),
            shutdown_grace=reader.get("SHUTDOWN_GRACE", _duration(0, HOUR, low_included=True),
                                      d.shutdown_grace),
            parse_processes=reader.get("PARSE_PROCESSES", _count(0, 64), d.parse_processes),
        )
        for name in CREDENTIALS:
            values[name.lower()] = reader.get(name, str.strip, "")
        ignored: list[str] = []
        values["destinations"] = read_destinations(
            env, reader.problems, base_url=_base_url, warnings=ignored, dry_run=dry_run,
            defaults={"TWITTER_API_BASE_URL": values["twitter_api_base_url"]})
        reader.asked |= setting_names(env)
        reader.asked |= {base for spec in SPECS.values()
                         for base in (*spec.required, *spec.optional)}
        warnings = [*ignored,
                    *(w for d in values["destinations"] if (w := app_password_warning(d)))]
        values["warnings"] = (*_unknown_settings(env, reader.asked), *warnings)
        if feed_urls_file := reader.get("FEED_URLS_FILE", _nonempty, ""):
            listed = _feed_urls_file(feed_urls_file, reader)
            values["feed_urls"] = tuple(dict.fromkeys((*values["feed_urls"], *listed)))
        settings = cls(**values)
        problems = reader.problems
        if require_feeds and not settings.feed_urls and "FEED_URLS" not in reader.bad:
            problems.append(
                "FEED_URLS: no feed to watch. Set FEED_URLS to one or more feed URLs "
                "(separated by commas, spaces or newlines), e.g. "
                "FEED_URLS=https://blog.example.org/feed.xml, or FEED_URLS_FILE to a file "
                "of them (one per line, or OPML), or add one with "
                f"`{command()} feeds add URL`"
            )
        if (require_credentials and not settings.dry_run and not settings.has_credentials
                and not any(n in p for p in problems for n in _DESTINATION_VARS)):
            missing = [n for n in CREDENTIALS if not values[n.lower()]]
            near = [f"{other} is set: did you mean {name}?"
                    for other, name in _near_misses(env, reader.asked)
                    if name in _DESTINATION_VARS]
            problems.append(
                f"{', '.join(missing)}: missing. X needs these OAuth 1.0a values from its "
                "developer portal; or set MASTODON_BASE_URL and MASTODON_ACCESS_TOKEN, or "
                "BLUESKY_HANDLE and BLUESKY_APP_PASSWORD; or DRY_RUN=1 to try without posting"
                + (f" ({'; '.join(near)})" if near else "")
            )
        if problems:  # a misspelt name may be why: say those too
            problems += [f"(and: {warning})" for warning in settings.warnings]
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
        return settings


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.bad: set[str] = set()
        self.asked: set[str] = set()  # every setting's name: what is not one is reported

    def get(self, name: str, convert: Callable[[str], T], default: T) -> T:
        self.asked.add(name)
        raw = self.env.get(name)
        if raw is None or (raw.strip() == "" and convert is not _template):
            return default
        try:
            return convert(raw)
        except ValueError as exc:
            self.bad.add(name)
            self.problems.append(f"{name}={raw!r}: {exc}")
            return default


def _feed_urls(raw: str) -> list[str]:
    urls = split_feed_urls(raw)
    bad = [f"{u!r} ({why})" for u in urls if (why := check_feed_url(u))]
    if bad:
        raise ValueError("not a feed URL: " + ", ".join(bad))
    return urls


def _feed_urls_file(path: str, reader: _Reader) -> list[str]:
    """The URLs of FEED_URLS_FILE: one per line, or an OPML file (bot.opml)."""
    from bot.opml import FeedListError, read_feed_list_file

    try:
        return [item.url for item in read_feed_list_file(path,
                                                          source=f"FEED_URLS_FILE={path}")]
    except FeedListError as exc:
        reader.bad.add("FEED_URLS")
        reader.problems.extend(exc.problems)
        return []


SAMPLE_ENTRY = Entry(id="sample", link="https://example.org/2024/05/a-post", title="A title",
                     summary="A summary.", author="An author", categories=("news",))


def check_template(template: str, name: str = "TWEET_TEMPLATE") -> str:
    """The checks every template gets, from TWEET_TEMPLATE or ``feeds add --template``:
    known fields and well-formed braces, a ``{url}``, and room for an article once its own
    text and the link are in. Raises ConfigError naming ``name``."""
    try:
        validate_template(template)
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        if "url" not in fields:
            raise ConfigError(
                "TWEET_TEMPLATE has no {url}: every post needs the article's link. Without "
                "it two articles with the same title make the same text, X refuses the second "
                "as a duplicate, and the bot must count that as already posted: the second "
                "article would never be announced")
        compose(template, SAMPLE_ENTRY, feed_title="A blog")
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("TWEET_TEMPLATE", name)) from None
    return template


def _template(raw: str) -> str:
    try:
        return check_template(raw, "the template")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
