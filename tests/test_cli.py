"""The command line against a real SQLite file and a loopback feed server.

Every command runs as a user runs it: ``python -m bot …`` in a subprocess, in a fresh working
directory (so no stray ``.env`` is read), with the bot's settings taken out of the environment.
The subprocesses are awaited with asyncio: the loopback servers live in the test's own loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.__main__ import build_parser, main
from bot.compose import weighted_length
from bot.config import CREDENTIALS, Settings
from bot.destinations import SPECS
from tests.conftest import ROOT, BotProcess, bot_env, clean_environ, sqlite_rows
from tests.fakes.fake_x import FakeX, Fault
from tests.fakes.feed_server import FeedServer


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli_env(db: Path | None, **extra: str) -> dict[str, str]:
    env = {**clean_environ(), "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    if db is not None:
        env["DATABASE_PATH"] = str(db)
    env.update(extra)
    return env


async def bot(*args: str, cwd: Path, env: dict[str, str]) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def assert_one_line_error(result: Result, code: int, *needles: str) -> str:
    assert result.rc == code, result
    assert "Traceback" not in result.text, result.err
    line = result.err.strip()
    assert line and "\n" not in line, f"expected one line on stderr, got {result.err!r}"
    assert line.startswith("feed-tweeter"), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def names(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def files(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (sha256, mtime_ns) of every file in ``path``."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(path.iterdir()) if p.is_file()}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "bot.sqlite3"


# -- feeds add / list / remove / pause / resume ------------------------------------------------


async def test_feeds_add_with_its_own_settings_then_list_shows_them(
    tmp_path: Path, db: Path
) -> None:
    env = cli_env(db, BACKFILL="0")
    url = "https://blog.example.org/feed.xml"
    added = await bot("feeds", "add", url, "--no-check", "--template",
                      "{feed_title}: {title} {url}",
                      "--hashtags", "python #asyncio", "--include", "python|asyncio",
                      "--exclude", "draft", "--backfill", "2", cwd=tmp_path, env=env)
    assert added.rc == 0, added
    assert f"added {url}" in added.out
    assert "tweets the newest 2" in added.out

    rows = sqlite_rows(db, "SELECT url, origin, template, hashtags, include_re, exclude_re, "
                           "backfill FROM feeds")
    assert rows == [(url, "cli", "{feed_title}: {title} {url}", "#python #asyncio",
                     "python|asyncio", "draft", 2)]

    listed = await bot("feeds", "list", "--wide", cwd=tmp_path, env=env)
    assert listed.rc == 0, listed
    header, line = listed.out.splitlines()
    for column in ("URL", "TITLE", "STATE", "LAST POLL", "NEXT POLL", "FAILURES", "LAST ERROR",
                   "SEEN", "SENT", "SETTINGS"):
        assert column in header
    assert line.startswith(url)
    assert " new " in line and " never " in line
    for shown in ("template='{feed_title}: {title} {url}'", "hashtags='#python #asyncio'",
                  "include='python|asyncio'", "exclude='draft'", "backfill=2"):
        assert shown in line

    # adding it again changes only what is given; '' clears a setting
    again = await bot("feeds", "add", url, "--no-check", "--exclude", "", cwd=tmp_path,
                      env=env)
    assert again.rc == 0, again
    assert "already there: changed exclude" in again.out
    assert sqlite_rows(db, "SELECT template, include_re, exclude_re, backfill FROM feeds") == [
        ("{feed_title}: {title} {url}", "python|asyncio", None, 2)]


OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0"><head><title>Feedly export</title></head><body>
<outline text="Tech" title="Tech">
  <outline type="rss" text="A blog" title="A blog" xmlUrl="https://a.example/feed.xml"
           htmlUrl="https://a.example/"/>
  <outline type="rss" text="B &amp; co" title="B &amp; co" xmlUrl="https://b.example/atom"/>
</outline>
<outline type="rss" text="C" title="C" xmlUrl="https://c.example/rss"/>
</body></opml>
"""


async def test_feeds_import_an_opml_file_then_export_it_again(tmp_path: Path, db: Path) -> None:
    from bot.opml import read_feed_list

    env = cli_env(db)
    assert (await bot("feeds", "add", "https://c.example/rss", "--no-check", cwd=tmp_path,
                      env=env)).rc == 0
    (tmp_path / "subscriptions.opml").write_bytes(OPML)
    imported = await bot("feeds", "import", "subscriptions.opml", cwd=tmp_path, env=env)
    assert imported.rc == 0, imported
    assert "imported 3 feeds from subscriptions.opml: 2 new, 1 already there" in imported.out
    assert sorted(r[0] for r in sqlite_rows(db, "SELECT url FROM feeds")) == [
        "https://a.example/feed.xml", "https://b.example/atom", "https://c.example/rss"]

    exported = await bot("feeds", "export", cwd=tmp_path, env=env)
    assert exported.rc == 0, exported
    assert exported.out.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert sorted(i.url for i in read_feed_list(exported.out.encode(), "export")) == [
        "https://a.example/feed.xml", "https://b.example/atom", "https://c.example/rss"]
    to_file = await bot("feeds", "export", "-o", "out.opml", cwd=tmp_path, env=env)
    assert to_file.rc == 0 and "exported 3 feeds to out.opml" in to_file.out
    assert read_feed_list((tmp_path / "out.opml").read_bytes(), "out.opml")

    (tmp_path / "bad.txt").write_text("https://ok.example/feed\nftp://nope.example/x\n")
    bad = await bot("feeds", "import", "bad.txt", cwd=tmp_path, env=env)
    assert bad.rc == 2 and "bad.txt: line 2: 'ftp://nope.example/x' is not a feed URL" in bad.err
    assert len(sqlite_rows(db, "SELECT url FROM feeds")) == 3  # nothing of it was imported


async def test_feeds_add_mentions_keep_for_one_feed(tmp_path: Path, db: Path) -> None:
    env = cli_env(db)
    url = "https://blog.example.org/feed.xml"
    added = await bot("feeds", "add", url, "--no-check", "--mentions", "keep", cwd=tmp_path,
                      env=env)
    assert added.rc == 0, added
    assert "mentions='keep'" in added.out
    assert sqlite_rows(db, "SELECT mentions FROM feeds") == [("keep",)]
    wrong = await bot("feeds", "add", url, "--mentions", "live", cwd=tmp_path, env=env)
    assert wrong.rc == 2 and "--mentions" in wrong.err and "keep" in wrong.err


@pytest.mark.parametrize(("args", "needles"), [
    (("feeds", "add", "https://b.example/feed", "--include", "(unclosed"),
     ("--include", "'(unclosed'", "not a valid regex")),
    (("feeds", "add", "https://b.example/feed", "--exclude", "*x"),
     ("--exclude", "not a valid regex")),
    (("feeds", "add", "https://b.example/feed", "--template", "{titel} {url}"),
     ("--template", "{titel}")),
    (("feeds", "add", "https://b.example/feed", "--hashtags", "#ok not-ok"),
     ("--hashtags", "not-ok")),
    (("feeds", "add", "ftp://b.example/feed"), ("ftp://b.example/feed", "http")),
    (("feeds", "add", "https://b.example/feed", "--backfill", "-1"), ("--backfill",)),
    (("feeds", "pause", "https://unknown.example/feed"),
     ("no such feed", "https://unknown.example/feed")),
    (("feeds", "remove", "https://unknown.example/feed"),
     ("no such feed", "https://unknown.example/feed")),
    (("feeds", "resume", "https://unknown.example/feed"), ("no such feed",)),
    (("posts", "retry", "999"), ("no such post", "999")),
    (("posts", "retry"), ("--all-failed",)),
    (("posts", "--state", "lost"), ("--state",)),
    (("preview", "not-a-url"), ("not-a-url",)),
    (("preview", "https://b.example/feed", "--count", "0"), ("--count",)),
    (("feeds", "add"), ("url",)),
    (("launch",), ("launch",)),
])
async def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, db: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    env = cli_env(db)
    assert (await bot("feeds", "add", "https://known.example/feed", "--no-check", cwd=tmp_path,
                      env=env)).rc == 0
    before = files(tmp_path)
    result = await bot(*args, cwd=tmp_path, env=env)
    assert_one_line_error(result, 2, *needles)
    assert files(tmp_path) == before, "a refused command changes nothing"


async def test_remove_pause_resume(tmp_path: Path, db: Path) -> None:
    env_url = "https://env.example/feed.xml"
    cli_url = "https://cli.example/feed.xml"
    env = cli_env(db, FEED_URLS=env_url)
    for url in (env_url, cli_url):
        assert (await bot("feeds", "add", url, "--no-check", cwd=tmp_path, env=env)).rc == 0

    removed = await bot("feeds", "remove", env_url, cwd=tmp_path, env=env)
    assert removed.rc == 0, removed
    assert "history is kept" in removed.out
    assert "still listed in FEED_URLS" in removed.out and "next start" in removed.out
    removed = await bot("feeds", "remove", cli_url, cwd=tmp_path, env=env)
    assert removed.rc == 0 and "FEED_URLS" not in removed.out, removed

    paused = await bot("feeds", "pause", env_url, cwd=tmp_path, env=env)
    assert paused.rc == 0 and f"paused {env_url}" in paused.out, paused
    again = await bot("feeds", "pause", env_url, cwd=tmp_path, env=env)
    assert again.rc == 0 and "already paused" in again.out, again
    listed = await bot("feeds", "list", cwd=tmp_path, env=env)
    states = {line.split()[0]: line.split()[1] for line in listed.out.splitlines()[1:]}
    assert states == {env_url: "paused", cli_url: "inactive"}

    resumed = await bot("feeds", "resume", env_url, cwd=tmp_path, env=env)
    assert resumed.rc == 0 and "resumed" in resumed.out and "was paused" in resumed.out, resumed
    assert sqlite_rows(db, f"SELECT active, paused, gone FROM feeds WHERE url = '{env_url}'") == [
        (1, 0, 0)]


# -- the database ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["text file", "directory", "missing directory"])
@pytest.mark.parametrize("command", [("status",), ("feeds", "list"), ("posts",),
                                     ("feeds", "add", "https://b.example/feed"),
                                     ("posts", "retry", "--all-failed"), ("run",)])
async def test_unusable_database_is_one_line_not_a_traceback(
    tmp_path: Path, kind: str, command: tuple[str, ...]
) -> None:
    if kind == "text file":
        path = tmp_path / "notes.txt"
        path.write_text("this is not a database\n" * 20)
    elif kind == "directory":
        path = tmp_path / "data"
        path.mkdir()
    else:
        path = tmp_path / "no" / "such" / "bot.sqlite3"
    before = files(tmp_path)
    env = cli_env(path, FEED_URLS="https://b.example/feed", DRY_RUN="1", HTTP_PORT="0")
    result = await bot(*command, cwd=tmp_path, env=env)
    assert_one_line_error(result, 2, "DATABASE_PATH")
    assert files(tmp_path) == before
    assert not (tmp_path / "no").exists()


async def test_a_corrupt_database_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)  # the header, then garbage
    result = await bot("status", cwd=tmp_path, env=cli_env(path))
    assert result.rc != 0
    assert_one_line_error(result, result.rc, "bot.sqlite3")


async def test_read_only_commands_never_create_the_database(tmp_path: Path, db: Path) -> None:
    env = cli_env(db)
    for command in (("status",), ("feeds", "list"), ("feeds",), ("posts",),
                    ("posts", "--state", "failed")):
        result = await bot(*command, cwd=tmp_path, env=env)
        assert result.rc == 0, result
        assert "no database at" in result.out
    assert names(tmp_path) == []


# -- preview ---------------------------------------------------------------------------------------


async def test_preview_prints_tweets_with_their_length_and_writes_nothing(
    tmp_path: Path, db: Path, feed_server: FeedServer
) -> None:
    blog = feed_server.add_blog("/feed.xml", "Preview blog")
    articles = [blog.publish(f"Post number {i}", summary=f"About {i}.",
                             categories=("Python",)) for i in range(1, 5)]
    env = cli_env(db)

    result = await bot("preview", blog.url, "--count", "2", cwd=tmp_path, env=env)
    assert result.rc == 0, result
    blocks = re.findall(r"^--- (\d+)/280\n(.*)$", result.out, re.MULTILINE)
    assert [text for _, text in blocks] == [f"Post number {a.n} {a.link}" for a in articles[2:]]
    for length, text in blocks:
        assert int(length) == weighted_length(text)
    assert "Preview blog" in result.out
    assert names(tmp_path) == [], "preview must not even create the database"

    # a subscribed feed is previewed with its own settings; the database is only read
    added = await bot("feeds", "add", blog.url, "--template", "{feed_title}: {title} {url}",
                      "--exclude", "number 4", cwd=tmp_path, env=env)
    assert added.rc == 0, added
    before = files(tmp_path)
    result = await bot("preview", blog.url, "--count", "2", cwd=tmp_path, env=env)
    assert result.rc == 0, result
    assert "filtered out (never tweeted): Post number 4" in result.out
    blocks = re.findall(r"^--- (\d+)/280\n(.*)$", result.out, re.MULTILINE)
    assert [text for _, text in blocks] == [f"Preview blog: Post number 3 {articles[2].link}"]

    # options override the feed's own settings
    result = await bot("preview", blog.url, "--count", "1", "--template",
                       "{title} {hashtags} {url}", "--exclude", "", "--hashtags", "#extra",
                       cwd=tmp_path, env=env)
    assert result.rc == 0, result
    blocks = re.findall(r"^--- (\d+)/280\n(.*)$", result.out, re.MULTILINE)
    assert [text for _, text in blocks] == [f"Post number 4 #Python #extra {articles[3].link}"]
    assert files(tmp_path) == before, "preview wrote to the database directory"


async def test_preview_of_an_unreachable_feed_fails_in_one_line(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.serve_bytes("/broken.xml", b"nope", status=500)
    result = await bot("preview", feed_server.url("/broken.xml"), cwd=tmp_path,
                       env=cli_env(tmp_path / "bot.sqlite3"))
    assert_one_line_error(result, 1, "/broken.xml", "500")
    assert names(tmp_path) == []


# -- posts and status, after the real service ran ------------------------------------------------


async def test_a_failed_post_is_listed_retried_and_then_sent(
    tmp_path: Path, db: Path, feed_server: FeedServer, fake_x: FakeX
) -> None:
    blog = feed_server.add_blog("/feed.xml", "Retry blog")
    blog.publish("Old one")
    article = blog.publish("Refused once")
    env = {**cli_env(None), **bot_env(db, [blog.url], fake_x, BACKFILL=1, HTTP_PORT=0)}
    fake_x.faults.append(Fault.bad_request("The `text` field is invalid."))

    ran = await bot("run", "--once", cwd=tmp_path, env=env)
    assert ran.rc == 0, ran
    assert fake_x.ledger == []
    (post_id, state), = sqlite_rows(db, "SELECT id, state FROM posts")
    assert state == "failed"

    failed = await bot("posts", "--state", "failed", cwd=tmp_path, env=env)
    assert failed.rc == 0, failed
    _, line, why = failed.out.splitlines()
    assert line.split()[:3] == [str(post_id), "x", "failed"]
    assert "Refused once" in line
    assert why.startswith("    ↳ HTTP 400") and "text` field is invalid" in why

    status = await bot("status", cwd=tmp_path, env=env)
    assert status.rc == 0, status
    assert "failed 1" in status.out

    retried = await bot("posts", "retry", str(post_id), cwd=tmp_path, env=env)
    assert retried.rc == 0, retried
    assert "queued 1 post" in retried.out and "post(s)" not in retried.out
    # the attempt made is kept: had it been ambiguous, the next one would look for it first
    assert sqlite_rows(db, "SELECT state, attempts FROM posts") == [("pending", 1)]
    twice = await bot("posts", "retry", str(post_id), cwd=tmp_path, env=env)
    assert_one_line_error(twice, 2, "not a failed post", f"{post_id} is pending")
    none = await bot("posts", "retry", "--all-failed", cwd=tmp_path, env=env)
    assert none.rc == 0 and "no failed posts" in none.out, none

    ran = await bot("run", "--once", cwd=tmp_path, env=env)
    assert ran.rc == 0, ran
    assert fake_x.texts() == [f"Refused once {article.link}"]

    status = await bot("status", cwd=tmp_path, env=env)
    assert status.rc == 0, status
    lines = status.out.splitlines()
    assert len(lines) <= 24, "status is one screen"
    assert lines[0].startswith("database:") and str(db) in lines[0]
    assert re.search(r"^feeds: +1 \(ok 1\)$", status.out, re.MULTILINE), status.out
    assert re.search(r"^posts: +pending 0, sending 0, sent 1, failed 0$", status.out,
                     re.MULTILINE), status.out
    assert re.search(r"^x: .*; gate open$", status.out, re.MULTILINE), status.out
    assert re.search(r"^last poll: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(\d+s ago\)$", status.out,
                     re.MULTILINE), status.out

    listed = await bot("feeds", "list", cwd=tmp_path, env=env)
    line = listed.out.splitlines()[1].split()
    assert line[:2] == [blog.url, "ok"]
    assert line[-2:] == ["2", "1"]  # articles seen, posts sent
    wide = await bot("feeds", "list", "--wide", cwd=tmp_path, env=env)
    assert wide.out.splitlines()[1].split()[:4] == [blog.url, "Retry", "blog", "ok"]
    sent_posts = await bot("posts", "--state", "sent", cwd=tmp_path, env=env)
    assert fake_x.ledger[0].id in sent_posts.out


# -- .env, .env.example, --help -----------------------------------------------------------------


async def test_dotenv_in_the_working_directory_is_read_and_the_environment_wins(
    tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("DATABASE_PATH=from-dotenv.sqlite3\nBACKFILL=3\n")
    url = "https://b.example/feed"
    result = await bot("feeds", "add", url, "--no-check", cwd=tmp_path, env=cli_env(None))
    assert result.rc == 0, result
    assert "tweets the newest 3" in result.out  # BACKFILL from .env
    assert (tmp_path / "from-dotenv.sqlite3").exists()

    result = await bot("feeds", "add", url, "--no-check", cwd=tmp_path,
                       env=cli_env(tmp_path / "from-env.sqlite3", BACKFILL="0"))
    assert result.rc == 0, result
    assert "tweets nothing" in result.out
    assert (tmp_path / "from-env.sqlite3").exists()


def test_env_example_documents_every_setting_with_its_default() -> None:
    from dotenv import dotenv_values

    source = (ROOT / "bot" / "config.py").read_text()
    names = set(re.findall(r'reader\.get\(\s*"([A-Z_]+)"', source)) | set(CREDENTIALS)
    names |= {base for spec in SPECS.values() for base in (*spec.required, *spec.optional)}
    assert len(names) > 20
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^(?:# )?([A-Z_]+)=", example, re.MULTILINE))
    assert names - documented == set(), "settings missing from .env.example"
    assert documented - names == set(), ".env.example documents settings that do not exist"

    # uncommented, the documented defaults are the defaults
    uncommented = re.sub(r"^# ([A-Z_]+=)", r"\1", example, flags=re.MULTILINE)
    path = ROOT / ".pytest_cache" / "env-example-uncommented"
    path.parent.mkdir(exist_ok=True)
    path.write_text(uncommented)
    values = {k: v or "" for k, v in dotenv_values(path).items()}
    values.update(dict.fromkeys(CREDENTIALS, "x"))
    settings = Settings.from_env(values)
    defaults = Settings(feed_urls=settings.feed_urls, destinations=settings.destinations,
                        **{name.lower(): "x" for name in CREDENTIALS})
    assert [d.name for d in settings.destinations] == ["x"]  # the others are commented out
    assert settings == defaults


@pytest.mark.parametrize("command", [(), ("run",), ("feeds",), ("feeds", "list"),
                                     ("feeds", "add"), ("feeds", "remove"), ("feeds", "pause"),
                                     ("feeds", "resume"), ("preview",), ("posts",),
                                     ("posts", "retry"), ("status",)])
def test_every_command_has_help(command: tuple[str, ...],
                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"], env={})
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(" ".join(("usage: feed-tweeter", *command)))
    assert len(out.splitlines()) >= 5


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["feeds", "add", "--backfill", "x", "https://b.example/f"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--backfill" in err and "feed-tweeter feeds add --help" in err


def test_the_console_script_runs() -> None:
    import subprocess

    script = Path(sys.executable).with_name("feed-tweeter")
    assert 'feed-tweeter = "bot.__main__:main"' in (ROOT / "pyproject.toml").read_text()
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e .)")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60,
                          env=cli_env(None))
    assert done.returncode == 0 and done.stdout.startswith("feed-tweeter "), done


async def test_configuration_errors_never_echo_a_secret(tmp_path: Path, db: Path) -> None:
    from tests.conftest import SECRETS

    env = cli_env(db, TWITTER_API_KEY="k" * 10, TWITTER_API_SECRET=SECRETS[0],
                  TWITTER_ACCESS_TOKEN="t" * 10, TWITTER_ACCESS_TOKEN_SECRET=SECRETS[1],
                  POLL_INTERVAL="nonsense", HTTP_PORT="http")
    for command in (("status",), ("run",)):
        result = await bot(*command, cwd=tmp_path, env=env)
        assert result.rc == 2 and "Traceback" not in result.err
        # one problem per line, under one heading
        assert result.err.splitlines() == [
            "feed-tweeter: invalid configuration:",
            "  POLL_INTERVAL='nonsense': expected a number of seconds such as 300, 1.5 or 5m "
            "(units ms, s, m, h, d)",
            "  HTTP_PORT='http': expected a whole number"]
        for secret in SECRETS:
            assert secret not in result.err


async def test_posts_retry_reaches_a_running_service(
    tmp_path: Path, db: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    blog = feed_server.add_blog("/feed.xml", "Live blog")
    article = blog.publish("Refused, then retried")
    fake_x.faults.append(Fault.bad_request())
    service = await BotProcess(bot_env(db, [blog.url], fake_x, BACKFILL=1), tmp_path).start()
    bots.append(service)
    await service.wait_for(r"post_failed id=1 ")

    env = cli_env(db)
    retried = await bot("posts", "retry", "--all-failed", cwd=tmp_path, env=env)
    assert retried.rc == 0 and "queued 1 post again" in retried.out, retried
    await fake_x.wait_for_tweets(1, timeout=40)  # the service re-reads its queue by itself
    assert fake_x.texts() == [f"Refused, then retried {article.link}"]
    assert await service.stop() == 0
