"""The first ten minutes, as a newcomer lives them: trying it, misspelt settings, a blog's home
page instead of its feed, a feed that is not there, a terminal 80 columns wide, and `status`
beside a service that serves another database."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import ROOT, BotProcess, bot_env, clean_environ, sqlite_rows
from tests.fakes.fake_x import FakeX
from tests.fakes.feed_server import FeedServer
from tests.test_cli import Result, bot


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**clean_environ(), "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8",
            "HTTP_PORT": "0", **extra}


# -- trying it never changes what a real run does later -----------------------------------------


async def test_a_dry_run_keeps_its_own_database_and_a_real_run_starts_clean(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    blog = feed_server.add_blog("/feed.xml", "Blog")
    blog.publish("Older")
    newest = blog.publish("The newest")
    tried = await BotProcess({"FEED_URLS": blog.url, "DRY_RUN": "1", "BACKFILL": "1",
                              "POLL_INTERVAL": "1", "LOG_LEVEL": "INFO"}, tmp_path).start()
    bots.append(tried)
    await tried.wait_for(r"\[dry run\] would tweet: The newest")
    # each poll says so at once, with the next one's time: the terminal is never silent
    await tried.wait_for(r"INFO .*feed_polled url=\S+ status=\d+ .*next_poll_in=\d+s")
    assert await tried.stop() == 0
    assert (tmp_path / "bot.dry-run.sqlite3").exists()
    assert not (tmp_path / "bot.sqlite3").exists(), "the try-it run wrote the real database"

    real = await BotProcess(bot_env(tmp_path / "bot.sqlite3", [blog.url], fake_x, BACKFILL=1),
                            tmp_path).start()
    bots.append(real)
    (tweet,) = await fake_x.wait_for_tweets(1, timeout=20)
    assert tweet.text == f"The newest {newest.link}"  # not inherited as "handled" from the try
    assert "dry_run_history" not in real.output
    assert await real.stop() == 0

    # a real run on a database a dry run used says so, once, clearly
    reused = await BotProcess(bot_env(tmp_path / "bot.dry-run.sqlite3", [blog.url], fake_x),
                              tmp_path).start()
    bots.append(reused)
    await reused.wait_for(r"WARNING .*dry_run_history posts=1 ")
    await asyncio.sleep(1.5)
    assert reused.output.count("dry_run_history") == 1
    assert await reused.stop() == 0


# -- settings that are not --------------------------------------------------------------------


async def test_misspelt_settings_are_reported_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("POLL_INTERVALL=5\nDRYRUN=1\nFEED_URLS=https://a.example.org/f\n"
                                   "SOMETHING_ELSE=1\n")
    listed = await bot("feeds", "list", cwd=tmp_path,
                       env=env_for(tmp_path, TWITTER_API_SECRET_KEY="x"))
    assert listed.rc == 0, listed
    warnings = [line for line in listed.err.splitlines() if "warning" in line]
    assert warnings == [
        "feed-tweeter: warning: DRYRUN (in .env) is not a setting, and is ignored; "
        "did you mean DRY_RUN?",
        "feed-tweeter: warning: POLL_INTERVALL (in .env) is not a setting, and is ignored; "
        "did you mean POLL_INTERVAL?",
        "feed-tweeter: warning: SOMETHING_ELSE (in .env) is not a setting, and is ignored",
        "feed-tweeter: warning: TWITTER_API_SECRET_KEY is not a setting, and is ignored; "
        "did you mean TWITTER_API_SECRET?",
    ]
    # the service refuses to post without credentials, and says which misspelling is why
    run = await bot("run", cwd=tmp_path, env=env_for(tmp_path, TWITTER_API_SECRET_KEY="x"))
    assert run.rc == 2
    assert "(TWITTER_API_SECRET_KEY is set: did you mean TWITTER_API_SECRET?)" in run.err
    assert "  (and: DRYRUN (in .env) is not a setting, and is ignored; did you mean DRY_RUN?)" \
        in run.err.splitlines()
    assert all(len(line) < 400 for line in run.err.splitlines()), "one problem per line"


async def test_settings_of_other_programs_are_left_alone(tmp_path: Path) -> None:
    quiet = await bot("feeds", "list", cwd=tmp_path,
                      env=env_for(tmp_path, HTTPS_PROXY="http://proxy:3128", EDITOR="vi",
                                  DATABASE_URL="postgres://x", LOG_FILE="/tmp/x"))
    assert quiet.rc == 0 and "warning" not in quiet.err, quiet


# -- a home page is not a feed, but it names one -----------------------------------------------


def home_page(*links: tuple[str, str, str]) -> bytes:
    tags = "".join(f'<link rel="alternate" type="{kind}" title="{title}" href="{href}">'
                   for kind, title, href in links)
    return (f"<!doctype html><html><head><title>A blog</title>{tags}</head>"
            "<body><h1>A blog</h1></body></html>").encode()


async def test_preview_and_feeds_add_find_the_feed_a_home_page_names(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    blog = feed_server.add_blog("/feed.xml", "Blog")
    blog.publish("Hello from the feed")
    feed_server.serve_bytes("/", home_page(
        ("application/rss+xml", "Blog » Feed", "/feed.xml"),
        ("application/rss+xml", "Blog » Comments Feed", "/comments/feed.xml")),
        content_type="text/html")
    home = feed_server.url("/")
    env = env_for(tmp_path, DATABASE_PATH=str(tmp_path / "bot.sqlite3"))
    shown = await bot("preview", home, "--count", "1", cwd=tmp_path, env=env)
    assert shown.rc == 0, shown
    assert f"{home} is a web page; it names its feed: {blog.url} (Blog » Feed)" in shown.out
    assert f"it also names {feed_server.url('/comments/feed.xml')}" in shown.out
    assert "Hello from the feed" in shown.out

    added = await bot("feeds", "add", home, cwd=tmp_path, env=env)
    assert added.rc == 0, added
    assert f"added {blog.url}" in added.out
    assert sqlite_rows(tmp_path / "bot.sqlite3", "SELECT url FROM feeds") == [(blog.url,)]


async def test_a_page_that_names_no_feed_says_so(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.serve_bytes("/", home_page(), content_type="text/html")
    env = env_for(tmp_path, DATABASE_PATH=str(tmp_path / "bot.sqlite3"))
    added = await bot("feeds", "add", feed_server.url("/"), cwd=tmp_path, env=env)
    assert added.rc == 1
    assert "is a web page that names no feed" in added.err and "Nothing was added" in added.err
    assert not (tmp_path / "bot.sqlite3").exists()


async def test_feeds_add_of_a_feed_that_is_not_there_says_so_at_once(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    missing = feed_server.url("/no-such-feed.xml")
    env = env_for(tmp_path, DATABASE_PATH=str(tmp_path / "bot.sqlite3"))
    added = await bot("feeds", "add", missing, cwd=tmp_path, env=env)
    assert added.rc == 1, added
    assert added.err.startswith(f"feed-tweeter: cannot add {missing}: ")
    assert "404" in added.err and "--no-check" in added.err
    assert not (tmp_path / "bot.sqlite3").exists()
    anyway = await bot("feeds", "add", missing, "--no-check", cwd=tmp_path, env=env)
    assert anyway.rc == 0 and f"added {missing}" in anyway.out and "not checked" in anyway.out


# -- terminal output that fits --------------------------------------------------------------


async def test_feeds_list_and_posts_fit_80_columns(tmp_path: Path) -> None:
    import sqlite3

    from bot.models import Entry
    from bot.store import NewPost, Store

    db = tmp_path / "bot.sqlite3"
    store = await Store.open(str(db))
    long_url = "https://a-rather-long-blog-name.example.org/" + "category/" * 6 + "feed.xml"
    await store.sync_env_feeds([long_url, "https://b.example.org/feed"], 1.0)
    feeds = await store.feeds()
    await store.update_feed(feeds[1].id, consecutive_failures=1,
                            last_error="HTTP 503 Service Unavailable " + "x" * 200)
    await store.record_poll(feeds[0].id, [NewPost(Entry(id="1", link="https://a.example.org/1",
                                                        title="T"), "T " * 120)], 2.0)
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE posts SET last_error = 'HTTP 503: ' || hex(randomblob(100))")
    conn.close()
    env = env_for(tmp_path, DATABASE_PATH=str(db), COLUMNS="80")
    for command in (("feeds", "list"), ("posts",)):
        shown: Result = await bot(*command, cwd=tmp_path, env=env)
        assert shown.rc == 0, shown
        assert all(len(line) <= 80 for line in shown.out.splitlines()), shown.out
    listed = await bot("feeds", "list", cwd=tmp_path, env=env)
    assert "↳ 1 failure: HTTP 503 Service Unavailable" in listed.out  # not "1 failures"
    wide = await bot("feeds", "list", "--wide", cwd=tmp_path, env=env)
    assert long_url in wide.out and "LAST ERROR" in wide.out and "SETTINGS" in wide.out


def test_every_help_text_is_plain_text() -> None:
    import subprocess

    from bot.__main__ import build_parser

    commands = [[], ["run"], ["feeds"], ["feeds", "list"], ["feeds", "add"], ["feeds", "import"],
                ["feeds", "export"], ["preview"], ["posts"], ["posts", "retry"], ["status"]]
    for command in commands:
        shown = subprocess.run([sys.executable, "-m", "bot", *command, "--help"],
                               capture_output=True, text=True, timeout=60, check=False,
                               env=env_for(Path(".")))
        assert shown.returncode == 0, shown
        for markup in ("``", ":func:", ":class:", "**"):
            assert markup not in shown.stdout, (command, markup)
        assert shown.stdout.startswith("usage: feed-tweeter"), shown.stdout
    assert build_parser().prog == "feed-tweeter"


# -- status beside a foreign service ------------------------------------------------------------


async def test_status_tells_a_service_of_another_database_from_its_own(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    blog = feed_server.add_blog("/feed.xml", "Blog")
    ours, theirs = tmp_path / "ours.sqlite3", tmp_path / "theirs.sqlite3"
    service = await BotProcess(bot_env(theirs, [blog.url], fake_x), tmp_path).start()
    bots.append(service)
    await service.wait_for(r"feed_baselined")
    assert service.health_url is not None
    port = service.health_url.split(":")[2].split("/")[0]
    await bot("feeds", "add", blog.url, cwd=tmp_path, env=env_for(tmp_path,
                                                                  DATABASE_PATH=str(ours)))
    foreign = await bot("status", cwd=tmp_path,
                        env=env_for(tmp_path, DATABASE_PATH=str(ours), HTTP_PORT=port))
    assert foreign.rc == 0, foreign
    assert "not running on this database" in foreign.out
    own = await bot("status", cwd=tmp_path,
                    env=env_for(tmp_path, DATABASE_PATH=str(theirs), HTTP_PORT=port))
    assert f"answering at http://127.0.0.1:{port}/healthz (200 ok)" in own.out, own.out
    assert await service.stop() == 0


async def test_status_never_says_a_post_is_due_while_the_gate_is_closed(tmp_path: Path) -> None:
    import json
    import time

    from bot.models import Entry
    from bot.store import NewPost, Store

    db = tmp_path / "bot.sqlite3"
    store = await Store.open(str(db))
    await store.sync_env_feeds(["https://a.example.org/feed"], 1.0)
    (feed,) = await store.feeds()
    await store.record_poll(feed.id, [NewPost(Entry(id="1", link="https://a.example.org/1",
                                                    title="T"), "T https://a.example.org/1")],
                            time.time())
    await store.set_meta("gate", json.dumps({"until": time.time() + 3600,
                                             "reason": "rate_limited", "detail": "429"}))
    await store.close()
    shown = await bot("status", cwd=tmp_path, env=env_for(tmp_path, DATABASE_PATH=str(db)))
    assert "; gate closed (rate_limited) for " in shown.out
    assert "next post: when the gate opens" in shown.out and "due" not in shown.out, shown.out
