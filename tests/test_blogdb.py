"""A blog's own SQLite database as a feed (bot.blogdb): URL parsing, reading, and end to end.

The end-to-end test runs the real service against a blog database that a second process
writes all the while, in both journal modes, and checks the tweets at the fake X.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from bot.blogdb import (
    BlogDbError,
    make_link,
    parse_blog_db_url,
    parse_published,
    read_blog_db,
)
from bot.errors import ConfigError, FeedError
from tests.conftest import BotProcess, bot_env
from tests.fakes.fake_x import FakeX

# -- URL parsing --------------------------------------------------------------------------


def test_defaults() -> None:
    src = parse_blog_db_url("sqlite:///var/lib/blog/blog.db?table=posts")
    assert src.path == "/var/lib/blog/blog.db"
    assert src.table == "posts"
    assert dict(src.columns) == {"id": "id", "title": "title", "url": "url",
                                 "published": "published", "summary": "summary"}
    assert src.optional == {"summary"}
    assert (src.where, src.url_prefix, src.limit) == (None, None, 100)


def test_the_issues_example_maps_every_column() -> None:
    src = parse_blog_db_url(
        "sqlite:///var/lib/blog/blog.db?table=posts&id=slug&title=headline&url=permalink"
        "&published=created_at&where=status%3D'published'")
    assert dict(src.columns) == {"id": "slug", "title": "headline", "url": "permalink",
                                 "published": "created_at", "summary": "summary"}
    assert src.where == "status='published'"


def test_query_values_are_form_encoded_and_columns_can_map_to_nothing() -> None:
    src = parse_blog_db_url(
        "sqlite:///srv/my%20blog/b.db?table=Posts&where=status='published'+AND+views%2B1>1"
        "%2C2&published=&url=&summary=body&url_prefix=https://b.example/p/&limit=20")
    assert src.path == "/srv/my blog/b.db"
    assert src.where == "status='published' AND views+1>1,2"
    assert src.columns["published"] is None and src.columns["url"] is None
    assert src.columns["summary"] == "body" and src.optional == frozenset()
    assert (src.url_prefix, src.limit) == ("https://b.example/p/", 20)


def test_four_slashes_mean_the_same_absolute_path() -> None:
    assert parse_blog_db_url("sqlite:////var/blog.db?table=p").path == "/var/blog.db"
    assert parse_blog_db_url("sqlite:/var/blog.db?table=p").path == "/var/blog.db"


@pytest.mark.parametrize(("url", "says"), [
    ("sqlite:blog.db?table=posts", "relative path 'blog.db'"),
    ("sqlite:///?table=posts", "no database file"),
    ("sqlite:///var/blog/?table=posts", "no database file"),
    ("sqlite://host/blog.db?table=posts", "not a host"),
    ("sqlite:///b.db", "missing table="),
    ("sqlite:///b.db?table=", "missing table="),
    ("sqlite:///b.db?table=posts&colour=red", "unknown parameter 'colour'"),
    ("sqlite:///b.db?table=posts&table=users", "table= is given twice"),
    ("sqlite:///b.db?table=posts&where", "'where' has no value"),
    ("sqlite:///b.db?table=posts%3Bdrop%20table%20x", "table='posts;drop table x' is not a "
                                                      "plain identifier"),
    ("sqlite:///b.db?table=posts;drop table x", "is not a plain identifier"),
    ('sqlite:///b.db?table=posts&id=a"b', "id='a\"b' is not a plain identifier"),
    ("sqlite:///b.db?table=posts&title=1title", "title='1title' is not a plain identifier"),
    ("sqlite:///b.db?table=main.posts", "table='main.posts' is not a plain identifier"),
    ("sqlite:///b.db?table=posts&url=perma%20link", "url='perma link' is not"),
    ("sqlite:///b.db?table=posts&id=", "id= needs a column name"),
    ("sqlite:///b.db?table=posts&title=", "title= needs a column name"),
    ("sqlite:///b.db?table=posts&url_prefix=blog.example/posts", "not an absolute http(s)"),
    ("sqlite:///b.db?table=posts&limit=0", "limit='0'"),
    ("sqlite:///b.db?table=posts&limit=lots", "limit='lots'"),
    ("sqlite:///b.db?table=posts&where=title%3D'%00'", "NUL"),
    ("sqlite:///b.db?table=posts&where=title='#1'", "%23"),
])
def test_bad_urls_name_the_bad_part(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_blog_db_url(url)
    assert says in str(err.value)


async def test_a_bad_url_is_a_feed_error_when_polled() -> None:
    with pytest.raises(BlogDbError, match="not a plain identifier"):
        await read_blog_db('sqlite:///tmp/x.db?table=posts&id=a"b')


# -- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-03-01T10:20:30Z", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
    ("2024-03-01T12:20:30+02:00", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
    ("2024-03-01 10:20:30", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),  # CURRENT_TIMESTAMP
    ("2024-03-01 10:20:30.250", datetime(2024, 3, 1, 10, 20, 30, 250000, tzinfo=UTC)),
    ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
    ("Fri, 01 Mar 2024 10:20:30 GMT", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
    (1709288430, datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
    (1709288430.5, datetime(2024, 3, 1, 10, 20, 30, 500000, tzinfo=UTC)),
    ("1709288430", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
    (1709288430000, datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),  # milliseconds
    (None, None), ("", None), ("last tuesday", None), (b"\xff", None),
    (float("nan"), None), (10**30, None),
])
def test_published_dates(value: object, expected: datetime | None) -> None:
    assert parse_published(value) == expected


@pytest.mark.parametrize(("value", "prefix", "expected"), [
    ("https://elsewhere.example/x", "https://blog.example/", "https://elsewhere.example/x"),
    ("hello-world", "https://blog.example/posts/", "https://blog.example/posts/hello-world"),
    ("hello-world", "https://blog.example/posts", "https://blog.example/posts/hello-world"),
    ("/2024/01/hi", "https://blog.example", "https://blog.example/2024/01/hi"),
    ("/2024/01/hi", "https://blog.example/", "https://blog.example/2024/01/hi"),
    ("42", "https://blog.example/?p=", "https://blog.example/?p=42"),
    ("?p=42", "https://blog.example", "https://blog.example/?p=42"),
    ("café au lait", "https://blog.example/", "https://blog.example/caf%C3%A9%20au%20lait"),
    ("already%20escaped", "https://blog.example/", "https://blog.example/already%20escaped"),
    ("//cdn.example/x", "https://blog.example/", "https://cdn.example/x"),
    ("hello-world", None, None),
    (None, "https://blog.example/", None),
    ("  ", "https://blog.example/", None),
    (7, "https://blog.example/p/", "https://blog.example/p/7"),
])
def test_links(value: object, prefix: str | None, expected: str | None) -> None:
    assert make_link(value, prefix) == expected


# -- reading ------------------------------------------------------------------------------


def make_blog(path: Path, journal_mode: str = "DELETE", rows: list[dict[str, Any]] | None = None,
              schema: str | None = None) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()[0] == \
            journal_mode.lower()
        conn.execute(schema or
                     "CREATE TABLE posts (id INTEGER PRIMARY KEY, slug TEXT UNIQUE, title TEXT, "
                     "url TEXT, published TEXT, summary TEXT, status TEXT DEFAULT 'published')")
        for row in rows or []:
            names = ", ".join(row)
            conn.execute(f"INSERT INTO posts ({names}) VALUES ({', '.join('?' * len(row))})",
                         tuple(row.values()))
        conn.commit()
    return path


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def url_for(path: Path, query: str = "table=posts") -> str:
    return f"sqlite://{path}?{query}"


async def test_rows_become_entries_newest_first(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db", rows=[
        {"slug": "one", "title": "  One\n <b>bold</b> ", "url": "/one",
         "published": "2024-01-01T00:00:00Z",
         "summary": "<p>Hi &amp; <script>x()</script>bye</p>"},
        {"slug": "two", "title": "Two", "url": "https://elsewhere.example/two",
         "published": "2024-01-02 00:00:00", "summary": None},
        {"slug": "three", "title": None, "url": None, "published": None,
         "summary": "No title here, only words"},
    ])
    feed = await read_blog_db(url_for(db, "table=posts&url_prefix=https://blog.example"))
    assert feed.title == "posts in blog.db"
    assert feed.link == "https://blog.example"
    assert [(e.id, e.title, e.link, e.position) for e in feed.entries] == [
        ("2", "Two", "https://elsewhere.example/two", 0),
        ("1", "One bold", "https://blog.example/one", 1),
        ("3", "No title here, only words", None, 2),  # NULL published sorts last
    ]
    assert [e.summary for e in feed.entries] == ["", "Hi & bye", "No title here, only words"]
    assert [e.published for e in feed.entries] == [
        datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC), None]


async def test_unix_time_columns(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db", schema="CREATE TABLE posts (id INTEGER PRIMARY KEY, "
                   "title TEXT, url TEXT, created INTEGER)", rows=[
                       {"title": "Later", "created": 1704153600},
                       {"title": "Earlier", "created": 1704067200000}])  # milliseconds
    feed = await read_blog_db(url_for(db, "table=posts&published=created"))
    assert [(e.title, e.published) for e in feed.entries] == [
        ("Earlier", datetime(2024, 1, 1, tzinfo=UTC)),  # SQL orders by the raw value
        ("Later", datetime(2024, 1, 2, tzinfo=UTC))]


async def test_where_filter_mapping_and_limit(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db", rows=[
        {"slug": f"post-{i}", "title": f"Post {i}", "published": f"2024-01-{i + 1:02d}",
         "status": "draft" if i % 2 else "published"} for i in range(10)])
    feed = await read_blog_db(url_for(
        db, "table=posts&id=slug&url=slug&where=status%3D'published'&limit=3"
            "&url_prefix=https://blog.example/posts/"))
    assert [e.id for e in feed.entries] == ["post-8", "post-6", "post-4"]
    assert feed.entries[0].link == "https://blog.example/posts/post-8"


async def test_without_published_the_order_is_newest_rowid_first(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db", schema="CREATE TABLE posts (id TEXT, title TEXT, "
                   "url TEXT)", rows=[{"id": c, "title": c, "url": None} for c in "abc"])
    feed = await read_blog_db(url_for(db, "table=posts&published="))
    assert [e.id for e in feed.entries] == ["c", "b", "a"]
    assert all(e.published is None and e.summary == "" for e in feed.entries)


async def test_a_view_and_a_without_rowid_table_can_be_read(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db", rows=[
        {"title": "Live", "published": "2024-01-02", "status": "published"},
        {"title": "Draft", "published": "2024-01-03", "status": "draft"}])
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE VIEW live AS SELECT id, title, url, published FROM posts "
                     "WHERE status = 'published'")
        conn.execute("CREATE TABLE notes (slug TEXT PRIMARY KEY, title TEXT, url TEXT, "
                     "published TEXT) WITHOUT ROWID")
        conn.execute("INSERT INTO notes VALUES ('n1', 'Note', NULL, '2024-02-01')")
        conn.commit()
    assert [e.title for e in (await read_blog_db(url_for(db, "table=LIVE"))).entries] == ["Live"]
    notes = await read_blog_db(url_for(db, "table=notes&id=slug"))
    assert [(e.id, e.title) for e in notes.entries] == [("n1", "Note")]


async def test_rows_without_an_id_are_skipped(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    db = make_blog(tmp_path / "blog.db", rows=[{"slug": None, "title": "No slug"},
                                               {"slug": "s", "title": "Slug"}])
    feed = await read_blog_db(url_for(db, "table=posts&id=slug"))
    assert [e.title for e in feed.entries] == ["Slug"]
    assert "blogdb_rows_skipped" in caplog.text


async def test_missing_table_names_it_and_lists_the_tables(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db")
    with pytest.raises(BlogDbError) as err:
        await read_blog_db(url_for(db, "table=articles"))
    assert str(err.value) == f"table 'articles' not found in {db} (has: posts)"
    assert isinstance(err.value, FeedError)


async def test_missing_column_names_it_and_lists_the_columns(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db")
    with pytest.raises(BlogDbError) as err:
        await read_blog_db(url_for(db, "table=posts&title=headline"))
    assert str(err.value).startswith(
        "column 'headline' not found in table 'posts' (has: id, slug, title, url, published, "
        "summary, status); set title= to one of them")


async def test_default_columns_must_exist_but_summary_may_be_missing(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db", schema="CREATE TABLE posts (id, title, url, created)")
    with pytest.raises(BlogDbError) as err:
        await read_blog_db(url_for(db))
    assert "column 'published' not found in table 'posts' (has: id, title, url, created)" \
        in str(err.value)
    assert "published= (empty)" in str(err.value)
    await read_blog_db(url_for(db, "table=posts&published=created"))  # summary: optional
    with pytest.raises(BlogDbError, match="column 'summary' not found"):
        await read_blog_db(url_for(db, "table=posts&published=created&summary=summary"))


async def test_file_problems_are_clear_feed_errors(tmp_path: Path) -> None:
    with pytest.raises(BlogDbError, match=r"database file not found: .*/nope\.db"):
        await read_blog_db(url_for(tmp_path / "nope.db"))
    with pytest.raises(BlogDbError, match="not a database file"):
        await read_blog_db(url_for(tmp_path))
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all, just some bytes" * 100)
    with pytest.raises(BlogDbError, match="not an SQLite database"):
        await read_blog_db(url_for(junk))


@pytest.mark.parametrize(("where", "says"), [
    ("nosuch = 1", "no such column: nosuch"),
    ("1) --", "failed"),
    ("1); DELETE FROM posts; SELECT (1", "one statement"),
    ("title = ?", "bindings"),
    ("title = 'x' /*", "failed"),
])
async def test_a_broken_where_filter_is_a_feed_error_and_writes_nothing(
    tmp_path: Path, where: str, says: str
) -> None:
    db = make_blog(tmp_path / "blog.db", rows=[{"title": "Kept"}])
    with pytest.raises(BlogDbError) as err:
        await read_blog_db(url_for(db, "table=posts&published=&where=" + quote(where, safe="")))
    assert says in str(err.value)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM posts").fetchone() == (1,)


async def test_a_runaway_query_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db", rows=[{"title": "x"}])
    forever = ("(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) "
               "SELECT max(n) FROM c) > 0")
    started = time.monotonic()
    with pytest.raises(BlogDbError, match=r"took longer than 0\.3s"):
        await read_blog_db(url_for(db, "table=posts&where=" + quote(forever, safe="")),
                           query_timeout=0.3)
    assert time.monotonic() - started < 10


async def test_the_blog_file_is_never_written(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db", rows=[{"title": "x", "published": "2024-01-01"}])
    before = db.read_bytes()
    for _ in range(3):
        await read_blog_db(url_for(db))
    assert db.read_bytes() == before
    assert files_in(tmp_path) == ["blog.db"]  # no journal left behind


async def test_a_wal_database_with_no_wal_files_yet_is_read(tmp_path: Path) -> None:
    db = make_blog(tmp_path / "blog.db", "WAL", rows=[{"title": "x", "published": "2024-01-01"}])
    assert files_in(tmp_path) == ["blog.db"]  # checkpointed on close
    feed = await read_blog_db(url_for(db))
    assert [e.title for e in feed.entries] == ["x"]


async def test_a_held_write_lock_is_waited_for_then_reported_without_blocking_the_loop(
    tmp_path: Path
) -> None:
    db = make_blog(tmp_path / "blog.db", rows=[{"title": "x", "published": "2024-01-01"}])
    writer = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    try:
        writer.execute("BEGIN EXCLUSIVE")  # rollback journal: readers must wait
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            with pytest.raises(BlogDbError, match="database is locked"):
                await read_blog_db(url_for(db), busy_timeout=0.5)
        finally:
            ticker.cancel()
        assert ticks >= 10, "the event loop must keep running while the read waits"

        async def release_soon() -> None:
            await asyncio.sleep(0.3)
            writer.execute("COMMIT")

        release = asyncio.create_task(release_soon())
        feed = await read_blog_db(url_for(db), busy_timeout=10)
        await release
        assert [e.title for e in feed.entries] == ["x"]
    finally:
        writer.close()


# -- end to end ---------------------------------------------------------------------------

# The blog: a second process that writes its database while the bot polls it. Between the
# test's commands it keeps updating a view counter (a write every few milliseconds), each
# write its own IMMEDIATE transaction with a 2 s busy timeout. It answers "OK <n>" per
# command and ends with one JSON line of counts; any error (such as "database is locked") is
# printed and makes it exit 1.
BLOG_WRITER = r"""
import json, queue, sqlite3, sys, threading, time
path, mode = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(path, timeout=2.0, isolation_level=None)
conn.execute("PRAGMA busy_timeout = 2000")
actual = conn.execute("PRAGMA journal_mode").fetchone()[0]
assert actual == mode.lower(), actual
commands = queue.Queue()
def read_commands():
    for line in sys.stdin:
        commands.put(json.loads(line))
    commands.put({"op": "quit"})
threading.Thread(target=read_commands, daemon=True).start()
SQL = {
    "insert": "INSERT INTO posts (slug, title, status, published_at, body) "
              "VALUES (:slug, :title, :status, :at, :body)",
    "edit": "UPDATE posts SET title = :title WHERE slug = :slug",
    "publish": "UPDATE posts SET status = 'published', published_at = :at WHERE slug = :slug",
    "views": "UPDATE posts SET views = views + 1 WHERE id % 3 = :n % 3",
}
counts = {"writes": 0, "commands": 0, "errors": []}
def write(op, params):
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(SQL[op], params)
        conn.execute("COMMIT")
        counts["writes"] += 1
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        counts["errors"].append(f"{op}: {exc}")
        print(f"ERROR {op}: {exc}", flush=True)
print("READY", flush=True)
n = 0
while True:
    try:
        cmd = commands.get(timeout=0.003)
    except queue.Empty:
        n += 1
        write("views", {"n": n})
        continue
    if cmd["op"] == "quit":
        break
    write(cmd["op"], cmd)
    counts["commands"] += 1
    print(f"OK {counts['commands']}", flush=True)
conn.close()
print("RESULT " + json.dumps(counts), flush=True)
sys.exit(1 if counts["errors"] else 0)
"""


class BlogWriter:
    """Drives :data:`BLOG_WRITER` over its stdin; each command waits for its OK."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.sent = 0
        self.lines: list[str] = []

    @classmethod
    async def start(cls, db: Path, journal_mode: str) -> BlogWriter:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", BLOG_WRITER, str(db), journal_mode,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        writer = cls(proc)
        await writer._expect("READY")
        return writer

    async def _line(self) -> str:
        assert self.proc.stdout is not None
        async with asyncio.timeout(20):
            raw = await self.proc.stdout.readline()
        line = raw.decode().rstrip("\n")
        self.lines.append(line)
        if not raw:
            raise AssertionError("the blog writer exited:\n" + "\n".join(self.lines))
        return line

    async def _expect(self, prefix: str) -> str:
        while not (line := await self._line()).startswith(prefix):
            assert not line.startswith(("ERROR", "Traceback")), "\n".join(self.lines)
        return line

    async def do(self, op: str, **params: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"op": op, **params}) + "\n").encode())
        await self.proc.stdin.drain()
        self.sent += 1
        assert await self._expect("OK ") == f"OK {self.sent}"

    async def finish(self) -> tuple[int, dict[str, Any]]:
        """Stop writing; the exit code and the writer's counts."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b'{"op": "quit"}\n')
        await self.proc.stdin.drain()
        self.proc.stdin.close()
        async with asyncio.timeout(20):
            rest = (await self.proc.stdout.read()).decode()
            rc = await self.proc.wait()
        self.lines += rest.splitlines()
        results = [json.loads(line[7:]) for line in self.lines if line.startswith("RESULT ")]
        assert results, "the blog writer gave no result:\n" + "\n".join(self.lines[-20:])
        return rc, results[-1]


@pytest.fixture
async def writers() -> AsyncIterator[list[BlogWriter]]:
    started: list[BlogWriter] = []
    yield started
    for writer in started:
        if writer.proc.returncode is None:
            writer.proc.kill()
            await writer.proc.wait()


def blog_schema(db: Path, journal_mode: str, now: datetime) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()[0] == \
            journal_mode.lower()
        conn.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, "
                     "title TEXT NOT NULL, status TEXT NOT NULL, published_at TEXT, body TEXT, "
                     "views INTEGER NOT NULL DEFAULT 0)")
        for i in range(3):
            conn.execute("INSERT INTO posts (slug, title, status, published_at, body) "
                         "VALUES (?, ?, 'published', ?, 'old')",
                         (f"old-{i}", f"Old post {i}", iso(now - timedelta(days=3 - i))))
        conn.execute("INSERT INTO posts (slug, title, status, body) "
                     "VALUES ('early-draft', 'Early draft', 'draft', 'wip')")
        conn.commit()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


PREFIX = "https://blog.example/posts/"


@pytest.mark.parametrize("journal_mode", ["WAL", "DELETE"])
async def test_a_blog_database_written_by_another_process_is_tweeted_exactly_once(
    tmp_path: Path, fake_x: FakeX, bots: list[BotProcess], writers: list[BlogWriter],
    journal_mode: str,
) -> None:
    blog_db = tmp_path / "blog.db"
    now = datetime.now(UTC).replace(tzinfo=None)
    blog_schema(blog_db, journal_mode, now)
    feed_url = (f"sqlite://{blog_db}?table=posts&url=slug&published=published_at&summary=body"
                f"&where=status%3D'published'&url_prefix={PREFIX}")

    writer = await BlogWriter.start(blog_db, journal_mode)  # writing from before the bot starts
    writers.append(writer)
    env = bot_env(tmp_path / "bot.sqlite3", [feed_url], fake_x, POLL_INTERVAL="0.5",
                  MAX_CONCURRENT_POSTS=1)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined .* entries=3 tweeting=0", timeout=30)
    assert fake_x.ledger == [], "the first poll must tweet nothing"

    seconds = itertools.count(1)

    def at() -> str:  # strictly increasing publication times
        return iso(now + timedelta(seconds=next(seconds)))

    await writer.do("insert", slug="new-a", title="New post A", status="published",
                    at=at(), body="a")
    await writer.do("insert", slug="new-b", title="New post B", status="published",
                    at=at(), body="b")
    await writer.do("insert", slug="draft-two", title="Draft two", status="draft",
                    at=None, body="wip")
    await writer.do("edit", slug="old-0", title="Old post 0, edited")  # seen: no tweet
    tweets = await fake_x.wait_for_tweets(2, timeout=30)
    await writer.do("edit", slug="new-a", title="New post A, edited")  # tweeted: no tweet
    await writer.do("edit", slug="draft-two", title="Draft two, final title")
    polled = len([line for line in bot.lines if "feed_polled" in line])
    await bot.wait_for(r"feed_polled", count=polled + 2, timeout=30)
    await writer.do("publish", slug="early-draft", at=at())  # where= starts matching
    await writer.do("publish", slug="draft-two", at=at())
    await writer.do("insert", slug="new-c", title="New post C", status="published",
                    at=at(), body="c")
    tweets = await fake_x.wait_for_tweets(5, timeout=30)

    polled = len([line for line in bot.lines if "feed_polled" in line])
    await bot.wait_for(r"feed_polled", count=polled + 4, timeout=30)  # a few more polls

    rc, result = await writer.finish()
    assert [t.text for t in fake_x.ledger] == [
        f"New post A {PREFIX}new-a",
        f"New post B {PREFIX}new-b",
        f"Early draft {PREFIX}early-draft",
        f"Draft two, final title {PREFIX}draft-two",
        f"New post C {PREFIX}new-c",
    ], "each published row exactly once, oldest first; edits are not new"
    assert [t.id for t in tweets] == [t.id for t in fake_x.ledger]
    assert rc == 0 and result["errors"] == [], f"the blog saw errors: {writer.lines[-20:]}"
    assert result["commands"] == 9
    assert result["writes"] > 50, f"the blog wrote too little to prove anything: {result}"
    assert "feed_failed" not in bot.output, bot.output[-3000:]

    status, health = await bot.healthz()
    assert status == 200
    feed_state = health["feed_states"][0]  # type: ignore[index]
    assert feed_state["state"] == "ok" and feed_state["last_error"] is None
    assert await bot.stop() == 0

    with contextlib.closing(sqlite3.connect(blog_db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal_mode.lower()
        assert conn.execute("SELECT count(*) FROM posts WHERE status = 'published'"
                            ).fetchone() == (8,)


async def test_a_missing_column_is_a_clear_per_feed_error_at_start_up(
    tmp_path: Path, bots: list[BotProcess]
) -> None:
    blog_db = make_blog(tmp_path / "blog.db", rows=[{"title": "x", "published": "2024-01-01"}])
    feed_url = f"sqlite://{blog_db}?table=posts&title=headline"
    env = bot_env(tmp_path / "bot.sqlite3", [feed_url], None, DRY_RUN=1)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    line = await bot.wait_for(r"feed_failed .*column 'headline' not found in table 'posts'",
                              timeout=30)
    assert "(has: id, slug, title, url, published, summary, status)" in line.string

    status, health = await bot.healthz()  # the service keeps running
    assert status == 200
    feed_state = health["feed_states"][0]  # type: ignore[index]
    assert feed_state["url"] == feed_url
    assert feed_state["state"] == "failing"
    assert "column 'headline' not found in table 'posts'" in feed_state["last_error"]
    assert await bot.stop() == 0
    assert "Traceback" not in bot.output, bot.output


async def test_a_bad_identifier_is_refused_naming_it(
    tmp_path: Path, bots: list[BotProcess]
) -> None:
    """Refused with the settings at start-up (exit 2), naming it: never run as SQL."""
    blog_db = make_blog(tmp_path / "blog.db")
    feed_url = f"sqlite://{blog_db}?table=posts%3Bdrop%20table%20posts"
    env = bot_env(tmp_path / "bot.sqlite3", [feed_url], None, DRY_RUN=1)
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)
    assert await bot.wait() == 2
    assert "table='posts;drop table posts' is not a plain identifier" in bot.output
    assert "Traceback" not in bot.output, bot.output
    with contextlib.closing(sqlite3.connect(blog_db)) as conn:
        assert conn.execute("SELECT count(*) FROM posts").fetchone() == (0,)
