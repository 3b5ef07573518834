"""The pure decisions: what is new, the first-poll baseline, order, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.decide import Filters, decide, oldest_first
from bot.models import Entry

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def entry(n: int, *, link: str | None = "auto", key: str | None = None,
          hours_ago: float | None = None, position: int | None = None, title: str | None = None,
          categories: tuple[str, ...] = ()) -> Entry:
    return Entry(
        id=key or f"guid-{n}",
        link=f"https://blog.example/{n}" if link == "auto" else link,
        title=title or f"Post {n}",
        published=None if hours_ago is None else NOW - timedelta(hours=hours_ago),
        position=n if position is None else position,
        categories=categories,
    )


def ids(entries: list[Entry]) -> list[str]:
    return [e.id for e in entries]


def test_first_poll_records_everything_and_tweets_nothing() -> None:
    feed = [entry(i, hours_ago=i) for i in range(5)]
    d = decide(feed, seen_keys=set(), seen_links=set(), first_poll=True, backfill=0, now=NOW)
    assert d.to_post == []
    assert sorted(ids(d.seen_only)) == sorted(ids(feed))


def test_backfill_tweets_the_newest_n_oldest_first() -> None:
    feed = [entry(i, hours_ago=i) for i in range(5)]  # 0 is the newest
    d = decide(feed, seen_keys=set(), seen_links=set(), first_poll=True, backfill=2, now=NOW)
    assert ids(d.to_post) == ["guid-1", "guid-0"]
    assert len(d.seen_only) == 3


def test_new_entries_come_oldest_first_by_date() -> None:
    feed = [entry(1, hours_ago=1), entry(2, hours_ago=3), entry(3, hours_ago=2)]
    d = decide(feed, seen_keys=set(), seen_links=set(), first_poll=False, backfill=0, now=NOW)
    assert ids(d.to_post) == ["guid-2", "guid-3", "guid-1"]


def test_without_dates_or_with_future_dates_the_document_order_decides() -> None:
    undated = [entry(i, position=i) for i in range(3)]  # feed lists newest first
    assert ids(oldest_first(undated, NOW)) == ["guid-2", "guid-1", "guid-0"]
    future = [entry(0, hours_ago=-48, position=0), entry(1, hours_ago=1, position=1)]
    assert ids(oldest_first(future, NOW)) == ["guid-1", "guid-0"]


def test_seen_id_or_seen_link_is_not_new() -> None:
    feed = [entry(1), entry(2), entry(3)]
    d = decide(feed, seen_keys={"guid-1"}, seen_links={"https://blog.example/2"},
               first_poll=False, backfill=0, now=NOW)
    assert ids(d.to_post) == ["guid-3"]
    # a changed guid with a known link is remembered, never tweeted
    assert ids(d.seen_only) == ["guid-2"]


def test_an_edited_entry_is_not_tweeted_again() -> None:
    edited = entry(1, title="Post 1 (updated)")
    d = decide([edited], seen_keys={"guid-1"}, seen_links={"https://blog.example/1"},
               first_poll=False, backfill=0, now=NOW)
    assert d.to_post == [] and d.seen_only == []


def test_duplicates_within_one_document_count_once() -> None:
    feed = [entry(1), entry(2, key="guid-1"), entry(3, link="https://blog.example/1")]
    d = decide(feed, seen_keys=set(), seen_links=set(), first_poll=False, backfill=0, now=NOW)
    assert ids(d.to_post) == ["guid-1"]


def test_entries_without_links_are_new_by_id() -> None:
    feed = [entry(1, link=None), entry(2, link=None)]
    d = decide(feed, seen_keys={"guid-1"}, seen_links=set(), first_poll=False, backfill=0, now=NOW)
    assert ids(d.to_post) == ["guid-2"]


def test_filters_reject_and_remember() -> None:
    feed = [entry(1, title="Python 3.14 released"), entry(2, title="Cooking tips"),
            entry(3, title="Release notes", categories=("python",)), entry(4, title="Python ads")]
    filters = Filters.compile(include=r"python", exclude=r"\bads\b")
    d = decide(feed, seen_keys=set(), seen_links=set(), first_poll=False, backfill=0, now=NOW,
               filters=filters)
    assert sorted(ids(d.to_post)) == ["guid-1", "guid-3"]
    assert sorted(ids(d.seen_only)) == ["guid-2", "guid-4"]
    assert d.filtered == 2
