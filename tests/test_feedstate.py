"""A feed's next state after each outcome of a poll: pure functions, no I/O (bot.feedstate)."""

from __future__ import annotations

import dataclasses

import pytest

from bot.feedstate import (
    FeedUpdate,
    Schedule,
    after_crash,
    after_error,
    after_move,
    after_success,
)
from bot.store import FeedRow

SCHEDULE = Schedule(interval=300.0, max_backoff=3600.0)


def row(**changed: object) -> FeedRow:
    base = FeedRow(id=1, url="https://a.example.org/feed", title="A blog", origin="env",
                   active=True, paused=False, gone=False, baselined=True, etag='"v1"',
                   last_modified=None, last_status=200, last_error=None,
                   consecutive_failures=0, last_polled_at=100.0, last_success_at=100.0,
                   next_poll_at=400.0, template=None, hashtags=None, include_re=None,
                   exclude_re=None, backfill=None)
    return dataclasses.replace(base, **changed)  # type: ignore[arg-type]


def test_a_304_changes_only_the_times_and_keeps_title_and_baseline() -> None:
    feed = row()
    update = after_success(feed, SCHEDULE, status=304, started=1000.0, now=1000.5,
                           etag='"v1"', last_modified=None)
    assert update.changes(feed) == {"last_status": 304, "last_polled_at": 1000.0,
                                    "last_success_at": 1000.5, "next_poll_at": 1300.0}
    update.apply(feed, update.changes(feed))
    assert update.changes(feed) == {}  # the cached row now says what was written


def test_a_200_records_the_title_and_the_baseline_and_clears_the_failures() -> None:
    feed = row(baselined=False, title="", consecutive_failures=3, last_error="HTTP 503")
    update = after_success(feed, SCHEDULE, status=200, started=1000.0, now=1001.0,
                           etag='"v2"', last_modified="Mon", title="New title")
    assert update.changes(feed) == {
        "title": "New title", "etag": '"v2"', "last_modified": "Mon", "last_error": None,
        "consecutive_failures": 0, "last_polled_at": 1000.0, "last_success_at": 1001.0,
        "next_poll_at": 1300.0, "baselined": True}
    untitled = after_success(row(), SCHEDULE, status=200, started=1.0, now=1.0, etag=None,
                             last_modified=None, title="")
    assert untitled.title == "A blog"  # a feed that lost its title keeps the one it had


@pytest.mark.parametrize(("failures", "delay"), [(0, 300.0), (1, 600.0), (2, 1200.0),
                                                 (3, 2400.0), (4, 3600.0), (60, 3600.0)])
def test_a_failing_feed_backs_off_doubling_up_to_the_cap(failures: int, delay: float) -> None:
    update = after_error(row(consecutive_failures=failures), SCHEDULE, status=503,
                         error="HTTP 503", started=1000.0)
    assert update.consecutive_failures == failures + 1
    assert update.next_poll_at == 1000.0 + delay
    assert update.last_success_at == 100.0  # a failure never looks like a success


def test_retry_after_wins_when_longer_but_never_beyond_the_cap() -> None:
    later = after_error(row(), SCHEDULE, status=429, error="HTTP 429", started=0.0,
                        retry_after=900.0)
    assert later.next_poll_at == 900.0
    capped = after_error(row(), SCHEDULE, status=429, error="HTTP 429", started=0.0,
                         retry_after=10 ** 9)
    assert capped.next_poll_at == 3600.0
    gone = after_error(row(), SCHEDULE, status=410, error="HTTP 410", started=0.0, gone=True)
    assert gone.gone and gone.last_error == "HTTP 410"
    long = after_error(row(), SCHEDULE, status=None, error="x" * 2000, started=0.0)
    assert long.last_error is not None and len(long.last_error) == 500


def test_a_move_and_a_crash() -> None:
    feed = row()
    assert after_move(feed, "https://b.example.org/feed").changes(feed) == {
        "fetch_url": "https://b.example.org/feed"}
    crash = after_crash(row(consecutive_failures=1), SCHEDULE, error="internal error: X",
                        now=50.0)
    assert (crash.consecutive_failures, crash.next_poll_at, crash.last_error) == (
        2, 650.0, "internal error: X")


def test_only_a_polls_columns_can_change() -> None:
    with pytest.raises(ValueError, match="paused"):
        FeedUpdate.of(row(), paused=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        after_move(row(), "https://b.example.org/").title = "x"  # type: ignore[misc]


def test_a_plan_names_exactly_the_columns_the_store_lets_a_poll_write() -> None:
    from bot.store import FEED_COLUMNS

    assert {f.name for f in dataclasses.fields(FeedUpdate)} == set(FEED_COLUMNS)
