"""Settings from an environment mapping: defaults, forms, and the messages on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, split_feed_urls
from bot.errors import ConfigError

CREDS = {"TWITTER_API_KEY": "k", "TWITTER_API_SECRET": "very-secret",
         "TWITTER_ACCESS_TOKEN": "t", "TWITTER_ACCESS_TOKEN_SECRET": "also-secret"}


def test_defaults() -> None:
    s = Settings.from_env({"FEED_URLS": "https://a.example/feed", **CREDS})
    assert s.feed_urls == ("https://a.example/feed",)
    assert s.database_path == "bot.sqlite3"
    assert s.poll_interval == 300
    assert s.tweet_template == "{title} {url}"
    assert s.twitter_api_base_url == "https://api.twitter.com"
    assert (s.dry_run, s.backfill, s.max_concurrent_posts) == (False, 0, 4)
    assert (s.http_host, s.http_port, s.log_level) == ("127.0.0.1", 8080, "INFO")
    assert s.max_posts_per_day is None and s.max_post_age == 86400


def test_feed_urls_split_on_commas_spaces_and_newlines() -> None:
    assert split_feed_urls(" https://a/x, https://b/y\nhttps://c/z  https://a/x ") == [
        "https://a/x", "https://b/y", "https://c/z"]


def test_durations_and_booleans() -> None:
    s = Settings.from_env({"FEED_URLS": "https://a/x", "DRY_RUN": "yes", "POLL_INTERVAL": "1",
                           "MAX_POST_AGE": "2h", "FEED_TIMEOUT": "1.5"})
    assert s.dry_run and s.poll_interval == 1.0 and s.max_post_age == 7200 and s.feed_timeout == 1.5


@pytest.mark.parametrize(("name", "value", "says"), [
    ("POLL_INTERVAL", "0", "greater than 0"),
    ("POLL_INTERVAL", "often", "number of seconds"),
    ("BACKFILL", "-1", "from 0 to 1,000"),
    ("POLL_INTERVAL", "100000000d", "up to 7d"),
    ("POLL_INTERVAL", "8d", "greater than 0s up to 7d"),
    ("MAX_FEED_BACKOFF", "169h", "up to 7d"),
    ("MAX_POST_AGE", "30d", "up to 7d"),
    ("FEED_TIMEOUT", "1h", "up to 10m"),
    ("POST_TIMEOUT", "11m", "up to 10m"),
    ("AUTH_RETRY_INTERVAL", "2d", "up to 1d"),
    ("SHUTDOWN_GRACE", "2h", "from 0s up to 1h"),
    ("MAX_CONCURRENT_POSTS", "1000", "from 1 to 100"),
    ("MAX_CONCURRENT_FETCHES", "0", "from 1 to 1,000"),
    ("MAX_FETCHES_PER_HOST", "101", "from 1 to 100"),
    ("MAX_POSTS_PER_DAY", "99999999", "from 1 to 1,000,000, or unlimited"),
    ("PARSE_PROCESSES", "65", "from 0 to 64"),
    ("MAX_FEED_BYTES", "2GiB", "up to 1GiB"),
    ("TWEET_TEMPLATE", "{title}", "has no {url}: every post needs the article's link"),
    ("X_COST_PER_POST", "-1", "US dollars from 0 to 100"),
    ("X_MAX_SPEND_PER_MONTH", "lots", "US dollars from 0 to 1,000,000"),
    ("TWEET_TEMPLATE", "x" * 270 + " {url}", "leaves no room"),
    ("MAX_CONCURRENT_POSTS", "many", "whole number"),
    ("DRY_RUN", "maybe", "true/false"),
    ("HTTP_PORT", "70000", "TCP port"),
    ("LOG_LEVEL", "LOUD", "DEBUG"),
    ("TWITTER_API_BASE_URL", "api.twitter.com", "http(s)://"),
    ("TWEET_TEMPLATE", "{title} {link}", "link"),
    ("FEED_URLS", "blog.example.org/feed", "not a feed URL"),
])
def test_bad_values_name_the_variable_and_the_form(name: str, value: str, says: str) -> None:
    env = {"FEED_URLS": "https://a/x", "DRY_RUN": "1", name: value}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert f"{name}={value!r}" in str(err.value)
    assert says in str(err.value)


def test_the_largest_values_in_range_are_accepted() -> None:
    s = Settings.from_env({"FEED_URLS": "https://a/x", "DRY_RUN": "1", "POLL_INTERVAL": "7d",
                           "MAX_FEED_BACKOFF": "168h", "MAX_POST_AGE": "604800",
                           "MAX_POSTS_PER_DAY": "unlimited", "SHUTDOWN_GRACE": "0"})
    assert s.poll_interval == s.max_backoff == s.max_post_age == 7 * 86400
    assert s.max_posts_per_day is None and s.shutdown_grace == 0


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"FEED_URLS": "https://a/x", "DRY_RUN": "1", "POLL_INTERVAL": "x",
                           "BACKFILL": "y"})
    assert "POLL_INTERVAL" in str(err.value) and "BACKFILL" in str(err.value)


def test_missing_credentials_are_named_and_dry_run_is_suggested() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"FEED_URLS": "https://a/x", "TWITTER_API_KEY": "k"})
    message = str(err.value)
    assert "TWITTER_API_SECRET, TWITTER_ACCESS_TOKEN, TWITTER_ACCESS_TOKEN_SECRET" in message
    assert "DRY_RUN=1" in message


def test_no_feed_says_how_to_add_one() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"DRY_RUN": "1"})
    assert "FEED_URLS" in str(err.value) and "feeds add" in str(err.value)


def test_secrets_never_in_repr_or_errors() -> None:
    s = Settings.from_env({"FEED_URLS": "https://a/x", **CREDS})
    assert "very-secret" not in repr(s) and "also-secret" not in repr(s)
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**CREDS, "FEED_URLS": "https://a/x", "POLL_INTERVAL": "x"})
    assert "very-secret" not in str(err.value)


def test_mentions_are_neutralised_unless_kept() -> None:
    base = {"FEED_URLS": "https://a/x", **CREDS}
    assert Settings.from_env(base).mentions == "neutralise"
    assert Settings.from_env({**base, "MENTIONS": "keep"}).mentions == "keep"
    assert Settings.from_env({**base, "MENTIONS": "Neutralize"}).mentions == "neutralise"
    with pytest.raises(ConfigError, match=r"MENTIONS='live': expected neutralise .* or keep"):
        Settings.from_env({**base, "MENTIONS": "live"})


def test_feed_urls_file_holds_urls_one_per_line_or_opml(tmp_path: Path) -> None:
    listed = tmp_path / "feeds.txt"
    listed.write_text("# my feeds\nhttps://a.example/feed\n\nhttps://b.example/rss\n")
    s = Settings.from_env({"FEED_URLS": "https://c.example/x https://a.example/feed",
                           "FEED_URLS_FILE": str(listed), "DRY_RUN": "1"})
    assert s.feed_urls == ("https://c.example/x", "https://a.example/feed",
                           "https://b.example/rss")
    many = tmp_path / "many.txt"  # more than an environment variable can hold (128 KiB)
    many.write_text("".join(f"https://blog{i}.example.org/feed.xml\n" for i in range(10_000)))
    assert len(Settings.from_env({"FEED_URLS_FILE": str(many), "DRY_RUN": "1"}).feed_urls) \
        == 10_000
    listed.write_text("https://a.example/feed\nnot a url\n")
    with pytest.raises(ConfigError, match=r"FEED_URLS_FILE=\S+feeds.txt: line 2: 'not'"):
        Settings.from_env({"FEED_URLS_FILE": str(listed), "DRY_RUN": "1"})
    with pytest.raises(ConfigError, match=r"FEED_URLS_FILE=\S+missing.txt: no such file"):
        Settings.from_env({"FEED_URLS_FILE": str(tmp_path / "missing.txt"), "DRY_RUN": "1"})
