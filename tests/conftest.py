"""Shared test helpers: the real service as a subprocess, loopback fakes, corpus paths."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, settings

from tests.fakes.fake_x import FakeX
from tests.fakes.feed_server import FeedServer

# Property-based tests: a fixed number of examples in CI (CI=true) and `make test`, so the suite
# stays well under 5 minutes; HYPOTHESIS_PROFILE=dev searches ten times as long.
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=1500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]
SHARED_FEEDS = ROOT.parent / "shared" / "feeds"
NO_SHARED = "../shared/feeds is absent: these tests read the shared feed corpus beside the project"


def corpus_files() -> list[Path]:
    """Every file of the shared corpus, real and adversarial ([] when it is absent)."""
    if not SHARED_FEEDS.is_dir():
        return []
    return sorted(p for d in ("real", "adversarial") for p in (SHARED_FEEDS / d).iterdir())

CREDENTIALS = {
    "TWITTER_API_KEY": "test-consumer-key",
    "TWITTER_API_SECRET": "test-consumer-secret-do-not-log",
    "TWITTER_ACCESS_TOKEN": "test-access-token",
    "TWITTER_ACCESS_TOKEN_SECRET": "test-access-secret-do-not-log",
}
SECRETS = (CREDENTIALS["TWITTER_API_SECRET"], CREDENTIALS["TWITTER_ACCESS_TOKEN_SECRET"])


def fake_x_for_credentials(**kwargs: object) -> FakeX:
    return FakeX(consumer_key=CREDENTIALS["TWITTER_API_KEY"],
                 consumer_secret=CREDENTIALS["TWITTER_API_SECRET"],
                 access_token=CREDENTIALS["TWITTER_ACCESS_TOKEN"],
                 access_token_secret=CREDENTIALS["TWITTER_ACCESS_TOKEN_SECRET"],
                 **kwargs)  # type: ignore[arg-type]


def clean_environ() -> dict[str, str]:
    """The test runner's environment without any of the bot's settings."""
    drop = re.compile(r"^(FEED_|TWITTER_|DATABASE_|POLL_|TWEET_|DRY_RUN|BACKFILL|MAX_|HTTP_|"
                      r"LOG_|HASHTAGS|AUTH_|POST_|SHUTDOWN_|MENTIONS|PARSE_PROCESSES)")
    return {k: v for k, v in os.environ.items() if not drop.match(k)}


class BotProcess:
    """``python -m bot run`` as a user would start it, with its output collected."""

    def __init__(self, env: Mapping[str, str], cwd: Path, args: tuple[str, ...] = ("run",)):
        self.env = {**clean_environ(), "HTTP_PORT": "0", "PYTHONUNBUFFERED": "1", **env}
        self.cwd = cwd
        self.args = args
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.health_url: str | None = None

    async def start(self) -> BotProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *self.args, cwd=self.cwd, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if m := re.search(r"http_listening url=([^\s\"]+)", line):
                self.health_url = m.group(1)
            self._changed.set()
        self._changed.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, pattern: str, timeout: float = 20.0, count: int = 1) -> re.Match[str]:
        """Wait until ``count`` lines match ``pattern``; return the last match."""
        rx = re.compile(pattern)
        try:
            return await self._wait_for(rx, timeout, count)
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} within {timeout}s; the bot said:\n"
                                 f"{self.output[-8000:]}") from None

    async def _wait_for(self, rx: re.Pattern[str], timeout: float, count: int
                        ) -> re.Match[str]:
        pattern = rx.pattern
        async with asyncio.timeout(timeout):
            while True:
                found = [m for line in self.lines if (m := rx.search(line))]
                if len(found) >= count:
                    return found[count - 1]
                if self.proc is not None and self.proc.returncode is not None and \
                        self._reader is not None and self._reader.done():
                    raise AssertionError(f"bot exited ({self.proc.returncode}) before "
                                         f"{pattern!r}:\n{self.output[-4000:]}")
                self._changed.clear()
                await self._changed.wait()

    async def healthz(self) -> tuple[int, dict[str, object]]:
        if self.health_url is None:
            await self.wait_for(r"http_listening")
        assert self.health_url is not None
        async with aiohttp.ClientSession() as session, session.get(self.health_url) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str) -> tuple[int, str]:
        if self.health_url is None:
            await self.wait_for(r"http_listening")
        assert self.health_url is not None
        url = self.health_url.rsplit("/", 1)[0] + path
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            return resp.status, await resp.text()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        async with asyncio.timeout(timeout):
            rc = await self.proc.wait()
            if self._reader is not None:
                await self._reader
        return rc

    async def stop(self, timeout: float = 30.0) -> int:
        self.signal(signal.SIGTERM)
        return await self.wait(timeout)

    async def kill(self) -> None:
        self.signal(signal.SIGKILL)
        await self.wait()


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        yield server


@pytest.fixture
async def fake_x() -> AsyncIterator[FakeX]:
    async with fake_x_for_credentials() as fx:
        yield fx


@pytest.fixture
async def bots(tmp_path: Path) -> AsyncIterator[list[BotProcess]]:
    """Bot processes a test starts; any still running at the end are killed."""
    started: list[BotProcess] = []
    yield started
    for bot in started:
        if bot.proc is not None and bot.proc.returncode is None:
            await bot.kill()


def bot_env(db: Path, feeds: list[str], fake: FakeX | None, **extra: object) -> dict[str, str]:
    env = {"DATABASE_PATH": str(db), "FEED_URLS": ",".join(feeds), "POLL_INTERVAL": "1",
           "LOG_LEVEL": "INFO"}
    if fake is not None:
        env.update(CREDENTIALS)
        env["TWITTER_API_BASE_URL"] = fake.base_url
    env.update({k: str(v) for k, v in extra.items()})
    return env


def sqlite_rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def dumps(obj: object) -> str:
    return json.dumps(obj, indent=1, default=str)
