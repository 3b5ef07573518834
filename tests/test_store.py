"""SQLite storage: migrations, the newer-schema refusal, one-transaction writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.errors import SchemaTooNewError, StorageError
from bot.models import Entry
from bot.schema import migration_scripts
from bot.store import APPLICATION_ID, NewPost, Store
from tests.conftest import sqlite_rows


async def test_migrations_apply_in_order_and_are_tracked(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    store = await Store.open(str(db))
    assert await store.user_version() == len(migration_scripts())
    await store.close()
    store = await Store.open(str(db))  # idempotent
    assert await store.user_version() == len(migration_scripts())
    await store.close()
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"feeds", "entries", "posts", "meta"} <= tables


async def test_a_newer_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE precious (x)")
        conn.execute("INSERT INTO precious VALUES (42)")
        conn.execute("PRAGMA user_version = 99")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # a newer bot's
    with pytest.raises(SchemaTooNewError, match="schema version 99"):
        await Store.open(str(db))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT x FROM precious").fetchall() == [(42,)]


async def test_a_failing_migration_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = len(migration_scripts())
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for _, name, sql in migration_scripts():
        (migrations / name).write_text(sql)
    broken = f"{len(migration_scripts()) + 1:04d}_broken.sql"
    (migrations / broken).write_text("CREATE TABLE half (x);\nTHIS IS NOT SQL;\n")
    monkeypatch.setattr("bot.store.MIGRATIONS_DIR", migrations)
    db = tmp_path / "bot.sqlite3"
    with pytest.raises(StorageError, match=broken):
        await Store.open(str(db))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == good
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        # the journal mode is switched only after the migrations succeeded
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert "half" not in names


@pytest.mark.parametrize("mark", [0, 0x12345678])
async def test_another_applications_database_is_refused_and_left_unchanged(
    tmp_path: Path, mark: int
) -> None:
    db = tmp_path / "theirs.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
        conn.execute(f"PRAGMA application_id = {mark}")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StorageError, match="is not a feed-tweeter database") as err:
        await Store.open(str(db))
    assert ("another program's mark" if mark else "tables the bot did not make (invoices)") \
        in str(err.value)
    assert db.read_bytes() == before  # not a byte changed: no tables, no WAL
    assert not (tmp_path / "theirs.sqlite3-wal").exists()


async def test_the_bots_database_is_marked_and_one_from_before_the_mark_is_recognised(
    tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    store = await Store.open(str(db))
    await store.close()
    assert sqlite_rows(db, "PRAGMA application_id") == [(APPLICATION_ID,)]
    old = tmp_path / "old.sqlite3"  # schema 2, as the previous version left it: no mark
    with sqlite3.connect(old) as conn:
        for number, _, sql in migration_scripts()[:2]:
            conn.executescript(sql + f";PRAGMA user_version = {number};")
    conn.close()
    store = await Store.open(str(old))
    assert await store.user_version() == len(migration_scripts())
    await store.close()
    assert sqlite_rows(old, "PRAGMA application_id") == [(APPLICATION_ID,)]


async def test_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("this is not sqlite, " * 100)
    with pytest.raises(StorageError, match=r"is not an SQLite database \(is it the right file"):
        await Store.open(str(db))
    assert db.read_text().startswith("this is not sqlite")


async def test_record_poll_writes_entries_posts_and_feed_state_together(tmp_path: Path) -> None:
    store = await Store.open(str(tmp_path / "bot.sqlite3"))
    await store.sync_env_feeds(["https://a.example/feed"], now=1.0)
    (feed,) = await store.feeds()
    items = [NewPost(Entry(id="1", link="https://a.example/1", title="One"), "One https://a.example/1"),
             NewPost(Entry(id="2", link="https://a.example/2", title="Two"), None)]
    ids = await store.record_poll(feed.id, items, 2.0, etag='"v1"', baselined=1)
    assert len(ids) == 1
    feed = await store.feed_by_url("https://a.example/feed")
    assert feed is not None and feed.etag == '"v1"' and feed.baselined
    keys, links = await store.seen(feed.id, [i.entry for i in items])
    assert keys == {"1", "2"}
    # the link that has X's post, and the one recorded as seen (no post: every destination)
    assert links == {"https://a.example/1": frozenset({"x"}), "https://a.example/2": None}
    # recording the same entries again creates no second post
    assert await store.record_poll(feed.id, items, 3.0) == []
    assert (await store.post_counts())["pending"] == 1

    # a failure inside the transaction leaves nothing behind
    bad = [NewPost(Entry(id="3", link=None, title="Three"), "Three")]
    with pytest.raises(sqlite3.Error):
        await store.record_poll(feed.id, bad, 4.0, title=object())
    with pytest.raises(ValueError, match="unknown feed columns"):
        await store.record_poll(feed.id, bad, 4.0, no_such_column=1)
    keys, _ = await store.seen(feed.id, [bad[0].entry])
    assert keys == set()
    assert (await store.post_counts())["pending"] == 1
    await store.close()


async def test_feed_urls_sync_keeps_history(tmp_path: Path) -> None:
    store = await Store.open(str(tmp_path / "bot.sqlite3"))
    added, dropped = await store.sync_env_feeds(["https://a/x", "https://b/y"], now=1.0)
    assert added == ["https://a/x", "https://b/y"] and dropped == []
    added, dropped = await store.sync_env_feeds(["https://b/y", "https://c/z"], now=2.0)
    assert added == ["https://c/z"] and dropped == ["https://a/x"]
    assert [f.url for f in await store.feeds(pollable_only=True)] == ["https://b/y", "https://c/z"]
    assert len(await store.feeds()) == 3  # the dropped one is kept, inactive
    added, _ = await store.sync_env_feeds(["https://a/x"], now=3.0)
    assert added == []  # it comes back with its history
    assert "https://a/x" in [f.url for f in await store.feeds(pollable_only=True)]
    await store.close()


async def test_two_feeds_racing_with_the_same_article_owe_one_post(tmp_path: Path) -> None:
    """Both polls looked before either wrote (concurrent feeds): the write decides."""
    store = await Store.open(str(tmp_path / "bot.sqlite3"))
    await store.sync_env_feeds(["https://a/feed.atom", "https://a/feed.json"], now=1.0)
    atom, json_feed = await store.feeds()
    article = "https://a/posts/1"
    first = await store.record_poll(
        atom.id, [NewPost(Entry(id="tag:a,1", link=article, title="One"), "One " + article)], 2.0)
    second = await store.record_poll(
        json_feed.id, [NewPost(Entry(id="1", link=article, title="One"), "One " + article)], 2.0)
    assert len(first) == 1 and second == []
    keys, _ = await store.seen(json_feed.id, [Entry(id="1", link=article, title="One")])
    assert keys == {"1"}  # remembered for that feed too, so it is not looked at again
    await store.close()


async def test_claim_due_claims_the_oldest_due_posts_and_reports_what_is_left(
    tmp_path: Path
) -> None:
    store = await Store.open(str(tmp_path / "bot.sqlite3"))
    await store.sync_env_feeds(["https://a.example/feed"], now=1.0)
    (feed,) = await store.feeds()
    items = [NewPost(Entry(id=str(i), link=f"https://a.example/{i}", title=f"P{i}"), f"P{i}")
             for i in range(6)]
    ids = await store.record_poll(feed.id, items, 2.0)
    (first,) = (await store.claim_due(2.0, 1)).claimed
    assert await store.mark_pending(first, 500.0, "HTTP 503")  # not due before t=500
    batch = await store.claim_due(100.0, 3, exclude=[ids[1]])
    assert [p.id for p in batch.claimed] == [ids[2], ids[3], ids[4]]  # oldest due first
    assert [p.attempts for p in batch.claimed] == [0, 0, 0]  # as before the claim
    assert batch.pending == 3 and batch.next_due_at == 0.0  # ids 0 (at 500), 1, 5 left
    states = {p.id: (p.state, p.attempts) for p in await store.posts()}
    assert [states[i] for i in ids] == [("pending", 1), ("pending", 0), ("sending", 1),
                                        ("sending", 1), ("sending", 1), ("pending", 0)]
    batch = await store.claim_due(100.0, 10)
    assert [p.id for p in batch.claimed] == [ids[1], ids[5]]
    assert (batch.pending, batch.next_due_at) == (1, 500.0)
    batch = await store.claim_due(100.0, 10)
    assert (batch.claimed, batch.pending, batch.next_due_at) == ([], 1, 500.0)
    await store.close()


async def test_deferred_feed_updates_are_written_together_and_none_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import bot.store

    monkeypatch.setattr(bot.store, "FEED_FLUSH_EVERY", 0.3)
    path = tmp_path / "bot.sqlite3"
    store = await Store.open(str(path))
    await store.sync_env_feeds(["https://a.example/feed", "https://b.example/feed"], now=1.0)
    a, b = await store.feeds()

    def on_disk() -> dict[int, tuple[object, ...]]:  # another connection: what a crash leaves
        return {r[0]: r[1:] for r in sqlite_rows(
            path, "SELECT id, etag, last_polled_at, next_poll_at FROM feeds")}

    store.defer_feed_update(a.id, etag='"a1"', last_polled_at=10.0, next_poll_at=35.0)
    store.defer_feed_update(b.id, last_polled_at=11.0, next_poll_at=36.0)
    store.defer_feed_update(a.id, last_polled_at=12.0, next_poll_at=37.0)  # a later poll
    assert on_disk() == {a.id: (None, None, 0.0), b.id: (None, None, 0.0)}  # not yet
    await asyncio.sleep(0.6)  # written together, by themselves, the newest values
    assert on_disk() == {a.id: ('"a1"', 12.0, 37.0), b.id: (None, 11.0, 36.0)}
    # reads through the store see deferred values at once (it writes them first)
    store.defer_feed_update(b.id, next_poll_at=40.0)
    assert [f.next_poll_at for f in await store.feeds()] == [37.0, 40.0]
    # a write for the same feed carries what was deferred for it; close() writes the rest
    store.defer_feed_update(a.id, etag='"a2"', last_polled_at=20.0)
    store.defer_feed_update(b.id, etag='"b2"')
    await store.update_feed(a.id, next_poll_at=45.0)
    assert on_disk()[a.id] == ('"a2"', 20.0, 45.0)
    await store.close()
    assert on_disk()[b.id] == ('"b2"', 11.0, 40.0)


async def test_a_failed_write_keeps_the_feeds_deferred_values(tmp_path: Path) -> None:
    """The worker's copy of the row already holds what was deferred, and a later 304 defers
    only what differs from it: a failed write must not drop those values."""
    path = tmp_path / "bot.sqlite3"
    store = await Store.open(str(path))
    await store.sync_env_feeds(["https://a.example/feed"], now=1.0)
    (feed,) = await store.feeds()
    await store.update_feed(feed.id, last_error="timeout", consecutive_failures=3)
    store.defer_feed_update(feed.id, last_error=None, consecutive_failures=0)  # a 304
    with pytest.raises(sqlite3.Error):  # the next poll's write fails
        await store.record_poll(feed.id, [], 2.0, title=object())
    with pytest.raises(sqlite3.Error):  # and another one
        await store.update_feed(feed.id, title=object())  # type: ignore[arg-type]
    await store.close()
    assert sqlite_rows(path, "SELECT last_error, consecutive_failures FROM feeds") == [(None, 0)]


async def test_links_stored_by_earlier_versions_are_normalised_and_still_match(
    tmp_path: Path
) -> None:
    """A database of schema 2 held links as feeds spelled them (an IRI, userinfo, an
    upper-case host). The bot now normalises links where they enter; the upgrade rewrites
    the old ones the same way, so an article read again is not taken for a new one."""
    db = tmp_path / "bot.sqlite3"
    old = ["https://ja.example/wiki/日本語", "https://user:pw@Blog.Example/a b",
           "https://blog.example/plain", "https://blog.example/%E6%97%A5"]
    with sqlite3.connect(db) as conn:
        for number, _, sql in migration_scripts()[:2]:
            conn.executescript(sql + f";PRAGMA user_version = {number};")
        conn.execute("INSERT INTO feeds (url, created_at) VALUES ('https://f.example/', 0)")
        conn.executemany("INSERT INTO entries (feed_id, entry_key, link, first_seen_at) "
                         "VALUES (1, ?, ?, 0)", [(f"k{i}", link) for i, link in enumerate(old)])
    conn.close()
    store = await Store.open(str(db))
    try:
        links = [r[0] for r in sqlite_rows(db, "SELECT link FROM entries ORDER BY id")]
        assert links == ["https://ja.example/wiki/%E6%97%A5%E6%9C%AC%E8%AA%9E",
                         "https://blog.example/a%20b", "https://blog.example/plain",
                         "https://blog.example/%E6%97%A5"]
        # read again from a feed that now spells them the new way: all already seen
        again = [Entry(id=f"new{i}", link=link, title="") for i, link in enumerate(links)]
        _, seen_links = await store.seen(1, again)
        assert set(seen_links) == set(links)
    finally:
        await store.close()


async def test_a_stale_writer_never_erases_a_tweet_id_or_revives_a_sent_post(
    tmp_path: Path
) -> None:
    """Each outcome is written only for the attempt that is sending: an answer that comes
    after the post was requeued and claimed again (another process, a requeue at start-up)
    changes nothing."""
    store = await Store.open(str(tmp_path / "bot.sqlite3"))
    try:
        await store.sync_env_feeds(["https://a.example/feed"], now=1.0)
        (feed,) = await store.feeds()
        (pid,) = await store.record_poll(feed.id, [NewPost(Entry(
            id="1", link="https://a.example/1", title="P"), "P https://a.example/1")], 2.0)
        (first,) = (await store.claim_due(3.0, 1)).claimed
        await store.requeue_interrupted()  # another process started and requeued it
        (second,) = (await store.claim_due(3.0, 1)).claimed
        assert await store.mark_sent(second, "tweet-2", 4.0)
        # the first attempt's late answers: none of them is written
        assert not await store.mark_sent(first, None, 5.0, "dry run: not posted")
        assert not await store.mark_pending(first, 0, "interrupted by shutdown")
        assert not await store.mark_failed(first, "HTTP 400")
        post = await store.post(pid)
        assert post is not None
        assert (post.state, post.tweet_id, post.sent_at, post.attempts) == (
            "sent", "tweet-2", 4.0, 2)
    finally:
        await store.close()


async def test_names_written_into_sql_are_checked_with_a_clear_error(tmp_path: Path) -> None:
    """Columns, flags and settings are the one part of a statement that is not a parameter:
    an unknown one is refused before any SQL is built, and nothing is written."""
    store = await Store.open(str(tmp_path / "bot.sqlite3"))
    try:
        await store.sync_env_feeds(["https://a.example/feed"], now=1.0)
        (feed,) = await store.feeds()
        with pytest.raises(ValueError, match=r"unknown feed flags: \['paused; DROP'\]"):
            await store.set_feed_flag(feed.url, **{"paused; DROP": 1})
        with pytest.raises(ValueError, match="no feed flag given"):
            await store.set_feed_flag(feed.url)
        with pytest.raises(ValueError, match=r"unknown feed settings: \['templat'\]"):
            await store.add_feed("https://b.example/feed", 2.0, templat="{title}")
        with pytest.raises(ValueError, match=r"unknown feed columns: \['etga'\]"):
            await store.update_feed(feed.id, etga='"v1"')
        with pytest.raises(ValueError, match=r"unknown feed columns: \['etga'\]"):
            store.defer_feed_update(feed.id, etga='"v1"')
        assert [f.url for f in await store.feeds()] == [feed.url]  # b was not added
        assert await store.set_feed_flag(feed.url, paused=1)
        assert (await store.add_feed("https://b.example/feed", 2.0, template="{title}")
                ).template == "{title}"
    finally:
        await store.close()


async def test_a_whole_transaction_runs_in_one_trip_on_aiosqlites_thread(tmp_path: Path) -> None:
    """bot/store/db.py runs each call as one function on aiosqlite's thread through its
    private ``Connection._execute`` (there is no public way). Should an aiosqlite upgrade
    change that, this says so."""
    import threading

    store = await Store.open(str(tmp_path / "bot.sqlite3"))
    try:
        database = store._database
        threads = {await database.run(lambda conn: threading.get_ident()) for _ in range(3)}
        assert len(threads) == 1 and threading.get_ident() not in threads
        result = await database.transaction(lambda conn: (
            conn.in_transaction, conn.execute("SELECT COUNT(*) FROM feeds").fetchone()[0]))
        assert result == (True, 0)
        assert not store.db.in_transaction  # committed
    finally:
        await store.close()


def test_the_store_packages_modules_keep_their_jobs_apart() -> None:
    """One job per module, each under ~300 lines with a docstring that says it; only db.py
    touches aiosqlite's private API; the tables' modules never import one another."""
    import ast

    import bot.store

    folder = Path(bot.store.__file__).parent
    tables = {"feeds", "entries", "posts", "meta"}
    for path in sorted(folder.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        assert ast.get_docstring(tree), path.name
        assert len(text.splitlines()) <= 300, path.name
        if path.stem != "db":
            assert "_execute(" not in text and "._conn" not in text, path.name
        imported = {node.module.rsplit(".", 1)[-1] for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module
                    and node.module.startswith("bot.store.")}
        if path.stem in tables:
            assert not imported & (tables - {path.stem}), (path.name, imported)
        if path.stem in ("posts", "meta"):
            assert "buffer" not in imported, path.name


async def test_retrying_failed_posts_keeps_their_attempts_and_never_sends_an_empty_one(
    tmp_path: Path
) -> None:
    from bot.store import Outgoing

    store = await Store.open(str(tmp_path / "bot.sqlite3"))
    try:
        await store.sync_env_feeds(["https://a.example/feed"], now=1.0)
        (feed,) = await store.feeds()
        items = [NewPost(Entry(id="1", link="https://a.example/1", title="One"),
                         outgoing=(Outgoing("x", "One https://a.example/1"),
                                   Outgoing("mastodon", None, error="its link is unusable")))]
        assert len(await store.record_poll(feed.id, items, 2.0)) == 1
        (claimed,) = (await store.claim_due(3.0, 10)).claimed
        assert await store.mark_failed(claimed, "gave up after 1 attempts: HTTP 503")
        assert await store.retry_failed(None) == 1  # the X post; not the one without text
        rows = {p.destination: (p.state, p.attempts) for p in await store.posts()}
        assert rows == {"x": ("pending", 1), "mastodon": ("failed", 0)}
    finally:
        await store.close()
