"""Content nobody designed for, end to end: the real service, a loopback blog, the fake X.

One feed's new entries mix poison (links X cannot follow or shorten, @names, lone surrogates,
titles that end in separators) with plain good posts. Every good entry is tweeted once, in the
poll that found it; each poison entry is tweeted safely (normalised link, no live mention) or
recorded as a failed post with its reason, and the feed stays ``ok``. A poll that crashes makes
its feed ``failing``, never ``ok``.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path

from twitter_text import parse_tweet

from tests.conftest import BotProcess, bot_env, sqlite_rows
from tests.fakes.fake_x import FakeX
from tests.fakes.feed_server import FeedServer

HOME = "https://blog.example/"
# What X links and notifies (twitter-text's valid mention: @ or ＠, not after a word character,
# then a letter, digit or _); a word joiner after the @ leaves it plain text
LIVE_MENTION = re.compile(r"(?:^|[^A-Za-z0-9_!#$%&*@＠])[@＠][A-Za-z0-9_]")
HUGE = "https://blog.example/" + "x" * 5000  # no link shortener takes it


def json_feed(items: list[dict[str, object]], home: str | None = HOME) -> bytes:
    doc: dict[str, object] = {"version": "https://jsonfeed.org/version/1.1",
                              "title": "Poison blog", "items": items}
    if home:
        doc["home_page_url"] = home
    return json.dumps(doc).encode()


OLD = [{"id": "old", "url": "https://blog.example/old", "title": "Old post"}]
NEW = [
    {"id": "good-1", "url": "https://blog.example/good-1", "title": "First good post"},
    {"id": "iri", "url": "https://ja.example/wiki/日本語の文字", "title": "Japanese slug"},
    {"id": "spaces", "url": "https://blog.example/a b/c d", "title": "Spaces in the path"},
    {"id": "userinfo", "url": "https://user:hunter2@blog.example/private",
     "title": "Userinfo in the link"},
    {"id": "mention", "url": "https://blog.example/interview",
     "title": "Interview with @someone and ＠other"},
    {"id": "qa", "url": "https://blog.example/qa", "title": "Q&A:"},
    {"id": "surrogate", "url": "https://blog.example/surrogate", "title": "Broken \ud800 text"},
    {"id": "huge", "url": HUGE, "title": "A link far too long"},
    {"id": "scheme", "url": "javascript:alert(1)", "title": "Not a web link"},
    {"id": "good-2", "url": "https://blog.example/good-2", "title": "Second good post"},
]


async def test_poison_entries_never_hold_up_the_good_ones(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    feed_server.serve_bytes("/poison.json", json_feed(OLD), "application/feed+json")
    feed_server.serve_bytes("/homeless.json", json_feed(OLD, home=None), "application/feed+json")
    bot = await BotProcess(bot_env(db, [feed_server.url("/poison.json"),
                                        feed_server.url("/homeless.json")], fake_x),
                           tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined .*homeless", timeout=20)
    await bot.wait_for(r"feed_baselined .*poison", timeout=20)

    homeless = [{"id": "huge", "url": HUGE + "y", "title": "Nowhere to link"},
                {"id": "fine", "url": "https://blog.example/fine", "title": "Fine post"}]
    feed_server.serve_bytes("/homeless.json", json_feed(OLD + homeless, home=None),
                            "application/feed+json")
    feed_server.serve_bytes("/poison.json", json_feed(OLD + NEW), "application/feed+json")
    # one poll of each finds them all: 10 + 1 posts to send, 1 that cannot be (its reason kept)
    await bot.wait_for(r"feed_polled url=\S+/poison.json status=200 entries=11 new=10")
    await bot.wait_for(r"feed_polled url=\S+/homeless.json status=200 entries=3 new=1 "
                       r"filtered=0 unpostable=1")
    tweets = await fake_x.wait_for_tweets(11, timeout=20)
    await asyncio.sleep(2.5)  # later polls tweet nothing again
    texts = [t.text for t in fake_x.ledger]
    assert len(texts) == 11, texts

    def tweet_for(title: str) -> str:
        (text,) = [t for t in texts if t.startswith(title[:12])]
        return text

    assert tweet_for("First good post") == "First good post https://blog.example/good-1"
    assert tweet_for("Second good post") == "Second good post https://blog.example/good-2"
    assert tweet_for("Fine post") == "Fine post https://blog.example/fine"
    assert tweet_for("Japanese slug") == ("Japanese slug https://ja.example/wiki/"
                                          "%E6%97%A5%E6%9C%AC%E8%AA%9E%E3%81%AE%E6%96%87%E5%AD%97")
    assert tweet_for("Spaces") == "Spaces in the path https://blog.example/a%20b/c%20d"
    assert tweet_for("Userinfo") == "Userinfo in the link https://blog.example/private"
    assert tweet_for("Q&A") == "Q&A: https://blog.example/qa"  # the title keeps its colon
    assert tweet_for("Broken") == "Broken \ufffd\ufffd\ufffd text https://blog.example/surrogate"
    assert tweet_for("A link far too long") == f"A link far too long {HOME}"  # the home link
    assert tweet_for("Not a web link") == f"Not a web link {HOME}"
    interview = tweet_for("Interview")
    assert interview.replace("\u2060", "") == ("Interview with @someone and ＠other "
                                               "https://blog.example/interview")
    for text in texts:
        assert not LIVE_MENTION.search(text), f"a live mention from feed content: {text!r}"
        assert text.isascii() or not re.search(r"https?://\S*[^\x00-\x7f]", text), text
        assert parse_tweet(text).valid, text
        assert "hunter2" not in text
    assert all(t.text in texts for t in tweets)

    # the entry that could not become a post is a failed post that says why
    failed = sqlite_rows(db, "SELECT e.entry_key, p.last_error FROM posts p "
                             "JOIN entries e ON e.id = p.entry_id WHERE p.state = 'failed'")
    assert [k for k, _ in failed] == ["huge"]
    assert "link" in str(failed[0][1]) and "cannot be tweeted" in str(failed[0][1])
    listed = await bot.get("/metrics")
    assert re.search(r'bot_posts_total\{outcome="failed"\} 1\.0', listed[1]), listed[1]
    await bot.wait_for(r"WARNING.*entry_unpostable url=\S+/homeless.json entry='huge'")
    status, health = await bot.healthz()
    assert status == 200
    assert {f["state"] for f in health["feed_states"]} == {"ok"}  # type: ignore[index,union-attr]
    assert await bot.stop() == 0


async def test_an_entry_sqlite_refuses_is_left_out_and_the_rest_of_the_poll_is_written(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    feed_server.serve_bytes("/feed.json", json_feed(OLD), "application/feed+json")
    bot = await BotProcess(bot_env(db, [feed_server.url("/feed.json")], fake_x),
                           tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined .*feed.json")
    with sqlite3.connect(db) as conn:  # SQLite refuses this one row, whatever the reason
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON entries "
                     "WHEN NEW.entry_key = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END")
    conn.close()
    feed_server.serve_bytes("/feed.json", json_feed([*OLD,
        {"id": "boom", "url": "https://blog.example/boom", "title": "Boom"},
        {"id": "next", "url": "https://blog.example/next", "title": "Next"}]),
        "application/feed+json")
    (tweet,) = await fake_x.wait_for_tweets(1, timeout=20)
    assert tweet.text == "Next https://blog.example/next"
    await bot.wait_for(r"entry_unstorable .*entry='boom'")
    _, health = await bot.healthz()
    assert health["feed_states"][0]["state"] == "ok"  # type: ignore[index]
    assert await bot.stop() == 0
    rows = sqlite_rows(db, "SELECT entry_key FROM entries ORDER BY id")
    assert ("next",) in rows and ("boom",) not in rows


async def test_a_poll_that_crashes_makes_its_feed_failing_and_the_others_go_on(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    """A poll that crashes on something other than a feed error (here SQLite refuses its
    write) counts as that feed's failure: failing in /healthz with the error, backing off."""
    db = tmp_path / "bot.sqlite3"
    feed_server.serve_bytes("/crash.json", json_feed(OLD), "application/feed+json")
    good = feed_server.add_blog("/good.xml", "Good blog")
    good.publish("Before")
    bot = await BotProcess(bot_env(db, [feed_server.url("/crash.json"), good.url], fake_x),
                           tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined .*crash.json")
    await bot.wait_for(r"feed_baselined .*good.xml")
    with sqlite3.connect(db) as conn:  # the end of a successful poll of this feed fails
        conn.execute("CREATE TRIGGER refuse BEFORE UPDATE OF last_success_at ON feeds "
                     "WHEN NEW.url LIKE '%crash.json' BEGIN SELECT RAISE(ABORT, 'boom'); END")
    conn.close()
    feed_server.serve_bytes("/crash.json", json_feed([*OLD,
        {"id": "next", "url": "https://blog.example/next", "title": "Next"}]),
        "application/feed+json")
    await bot.wait_for(r"poll_crashed url=\S+crash.json")
    good.publish("After")
    (tweet,) = await fake_x.wait_for_tweets(1, timeout=20)
    assert tweet.text.startswith("After ")
    _, health = await bot.healthz()
    states = {f["url"].rsplit("/", 1)[1]: f for f in health["feed_states"]}  # type: ignore
    assert states["crash.json"]["state"] == "failing"
    assert "internal error" in states["crash.json"]["last_error"]
    assert states["crash.json"]["consecutive_failures"] >= 1
    assert states["good.xml"]["state"] == "ok"

    with sqlite3.connect(db) as conn:  # fixed: the next poll tweets what it owes
        conn.execute("DROP TRIGGER refuse")
    conn.close()
    tweets = await fake_x.wait_for_tweets(2, timeout=20)
    assert tweets[1].text == "Next https://blog.example/next"
    assert await bot.stop() == 0
