"""Operator mistakes, end to end: two services on one database, a full disk, read-only files,
a database that is another program's. Each gets a clear message and loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BotProcess, bot_env, clean_environ, sqlite_rows
from tests.fakes.fake_x import FakeX
from tests.fakes.feed_server import FeedServer


async def test_a_second_run_on_the_same_database_is_refused_and_the_first_goes_on(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    blog = feed_server.add_blog("/feed.xml", "Blog")
    blog.publish("Old")
    first = await BotProcess(bot_env(db, [blog.url], fake_x), tmp_path).start()
    bots.append(first)
    await first.wait_for(r"feed_baselined")
    pid = first.proc.pid  # type: ignore[union-attr]

    # the same database: refused at once, whatever the mode, before it touches anything
    other = tmp_path / "other.xml"
    for extra in ({}, {"DRY_RUN": "1"}, {"FEED_URLS": feed_server.url("/other.xml")}):
        second = await BotProcess({**bot_env(db, [blog.url], fake_x), **extra},
                                  tmp_path).start()
        bots.append(second)
        assert await second.wait(20) == 3
        assert second.output.strip() == (
            f"feed-tweeter: another bot is running on DATABASE_PATH={db} (pid {pid}): one "
            "service per database. Stop it first, or give this one its own DATABASE_PATH")
    once = await BotProcess(bot_env(db, [blog.url], fake_x), tmp_path,
                            args=("run", "--once")).start()
    bots.append(once)
    assert await once.wait(20) == 3
    assert not other.exists()

    # the first one still polls its feeds and tweets each new article once
    new = [blog.publish(f"New {i}") for i in range(3)]
    tweets = await fake_x.wait_for_tweets(3, timeout=20)
    await asyncio.sleep(2)
    assert sorted(t.text for t in fake_x.ledger) == sorted(f"{a.title} {a.link}" for a in new)
    assert len(tweets) == 3
    assert sqlite_rows(db, "SELECT url, active FROM feeds") == [(blog.url, 1)]
    _, health = await first.healthz()
    assert health["feed_states"][0]["state"] == "ok"  # type: ignore[index]

    # the operator's commands work beside it
    listed = await asyncio.to_thread(run_bot, tmp_path, {"DATABASE_PATH": str(db)},
                                     "feeds", "list")
    assert listed.returncode == 0 and blog.url in listed.stdout, listed
    assert await first.stop() == 0


async def test_a_run_that_cannot_bind_its_port_changes_nothing(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    blog = feed_server.add_blog("/feed.xml", "Blog")
    with contextlib.closing(__import__("socket").socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bot = await BotProcess({**bot_env(db, [blog.url], fake_x), "HTTP_PORT": str(port)},
                               tmp_path).start()
        bots.append(bot)
        assert await bot.wait(20) == 1
    assert f"HTTP_PORT={port}" in bot.output
    assert not db.exists(), "the database was touched before the port was bound"


# -- a full disk ----------------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (skips the test where mounting is not allowed)."""
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("making a small filesystem needs root (mount -t tmpfs)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Write zeros to ``path`` until the filesystem is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 512, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)


async def test_a_full_disk_loses_nothing_and_heals_without_a_restart(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    with small_filesystem(tmp_path / "small", "3m") as small:
        db = small / "bot.sqlite3"
        blog = feed_server.add_blog("/feed.xml", "Blog")
        blog.publish("Old")
        bot = await BotProcess(bot_env(db, [blog.url], fake_x, MAX_CONCURRENT_POSTS=4),
                               tmp_path).start()
        bots.append(bot)
        await bot.wait_for(r"feed_baselined")
        fake_x.delay = 3.0  # X takes its time: the disk fills while the posts are with X
        new = [blog.publish(f"Written before the disk filled {i}") for i in range(3)]
        await bot.wait_for(r"feed_polled .* new=3")
        async with asyncio.timeout(10):
            while fake_x.in_flight < 3:
                await asyncio.sleep(0.05)
        filler = small / "filler"
        fill(filler)
        # X takes all three; their outcome cannot be written
        await fake_x.wait_for_tweets(3, timeout=15)
        await bot.wait_for(r"database_unwritable")
        status, health = await bot.healthz()
        assert status == 503 and health["status"] == "database_unwritable", health
        assert "full" in str(health["database_error"])
        later = blog.publish("Published while the disk was full")
        await asyncio.sleep(4)  # several polls and dispatcher passes fail meanwhile
        assert len(bot.lines) < 60, bot.output  # no flood of tracebacks
        assert len([line for line in bot.lines if "database_unwritable" in line]) == 1
        assert "Traceback" not in bot.output

        fake_x.delay = 0.0
        filler.unlink()  # space again: no restart
        await bot.wait_for(r"database_writable_again")
        await bot.wait_for(r"post_requeued .*outcome_not_recorded", count=3)
        await bot.wait_for(r"post_sent .* duplicate=1", count=3, timeout=30)
        tweets = await fake_x.wait_for_tweets(4, timeout=30)
        await asyncio.sleep(2)
        assert sorted(t.text for t in fake_x.ledger) == sorted(
            f"{a.title} {a.link}" for a in [*new, later]), "each article on X exactly once"
        assert len(tweets) == 4
        status, health = await bot.healthz()
        assert status == 200 and health["status"] == "ok"
        assert await bot.stop() == 0
        rows = sqlite_rows(db, "SELECT state, COUNT(*) FROM posts GROUP BY state")
        assert rows == [("sent", 4)]


# -- files that are not the bot's to change -----------------------------------------------


def run_bot(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path,
                          env={**clean_environ(), "HTTP_PORT": "0", **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_another_programs_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    before = db.read_bytes()
    result = run_bot(tmp_path, {"DATABASE_PATH": str(db), "DRY_RUN": "1",
                                "FEED_URLS": "http://127.0.0.1:9/feed"}, "run", "--once")
    assert result.returncode != 0
    assert "is not a feed-tweeter database: it holds tables the bot did not make (users)" \
        in result.stdout + result.stderr
    assert db.read_bytes() == before


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_database_or_folder_says_so(what: str) -> None:
    """As a user without write access (root writes anything, so the bot runs as nobody)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the bot as another user")
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="bot-ro-", dir="/tmp"))  # nobody can reach it
    try:
        db = folder / "bot.sqlite3"
        made = run_bot(folder, {"DATABASE_PATH": str(db)}, "feeds", "add", "https://a.example/f",
                       "--no-check")
        assert made.returncode == 0, made
        folder.chmod(0o755)  # nobody may read it, not write in it
        db.chmod(0o644)
        if what == "file":  # the folder writable, the file not
            folder.chmod(0o777)
            (folder / "bot.sqlite3.lock").touch()
            (folder / "bot.sqlite3.lock").chmod(0o666)
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        env = {**clean_environ(), "HTTP_PORT": "0", "DRY_RUN": "1", "DATABASE_PATH": str(db)}
        result = subprocess.run([*as_nobody, sys.executable, "-m", "bot", "run", "--once"],
                                cwd="/", env=env, capture_output=True, text=True, timeout=60,
                                check=False)
        out = result.stdout + result.stderr
        assert result.returncode != 0
        if what == "file":
            assert f"DATABASE_PATH='{db}' is read-only" in out, out
        else:
            assert f"its folder {str(folder)!r} is read-only" in out, out
        assert "not a usable SQLite database" not in out
    finally:
        shutil.rmtree(folder, ignore_errors=True)
