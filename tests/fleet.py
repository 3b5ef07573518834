"""The three networks together, for the tests that run the bot with X, Mastodon and Bluesky
configured at once (tests/test_crash.py, tests/test_destinations.py, tests/test_upgrade.py).

- the settings of each destination (``x_env``, ``mastodon_env``, ``bluesky_env``; a suffix
  ``__NAME`` makes a named account) and :func:`bot_process`, a :class:`BotProcess` that sees
  only the destinations the test configured (not MASTODON_*/BLUESKY_* of the runner's shell);
- :class:`StandaloneFake`: one of the three fakes as its own process (``python -m
  tests.fakes.fake_x`` ...), steered and read over HTTP: ``/_control`` (faults, delay,
  ``in_flight``), the ledger with ids and keys, the requests as answered;
- :func:`title_of`: which article a post is, whatever the network did to its link (Bluesky shows
  a shortened one): the text without its last word. The tests' titles are unique.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from tests.conftest import CREDENTIALS, ROOT, BotProcess

MASTODON_TOKEN = "test-mastodon-token-do-not-log"
BLUESKY_HANDLE = "feedbot.test"
BLUESKY_APP_PASSWORD = "abcd-efgh-ijkl-mnop"  # looks like an app password: no warning
NETWORKS = ("x", "mastodon", "bluesky")


def x_env(base_url: str, suffix: str = "") -> dict[str, str]:
    env = {k + suffix: v for k, v in CREDENTIALS.items()}
    env["TWITTER_API_BASE_URL" + suffix] = base_url
    return env


def mastodon_env(base_url: str, suffix: str = "", token: str = MASTODON_TOKEN
                 ) -> dict[str, str]:
    return {"MASTODON_BASE_URL" + suffix: base_url, "MASTODON_ACCESS_TOKEN" + suffix: token}


def bluesky_env(base_url: str, suffix: str = "") -> dict[str, str]:
    return {"BLUESKY_HANDLE" + suffix: BLUESKY_HANDLE,
            "BLUESKY_APP_PASSWORD" + suffix: BLUESKY_APP_PASSWORD,
            "BLUESKY_SERVICE_URL" + suffix: base_url}


ENV = {"x": x_env, "mastodon": mastodon_env, "bluesky": bluesky_env}


def bot_process(env: Mapping[str, str], cwd: Path, args: tuple[str, ...] = ("run",)
                ) -> BotProcess:
    """``python -m bot run`` with ``env``: no destination but those ``env`` configures."""
    bot = BotProcess(env, cwd, args)
    bot.env = {k: v for k, v in bot.env.items()
               if k in env or not k.startswith(("MASTODON_", "BLUESKY_", "TWITTER_"))}
    return bot


def title_of(text: str) -> str:
    """The article a post is about: its text without the link at its end."""
    return text.rsplit(maxsplit=1)[0] if " " in text.strip() else text


@dataclass(frozen=True, slots=True)
class Posted:
    """One post a fake holds: its id on the network, its text, its key (Mastodon's
    Idempotency-Key, Bluesky's rkey; None on X)."""

    id: str
    text: str
    key: str | None = None


class StandaloneFake:
    """One network's fake as a process of its own, as the demo runs it. Its stderr goes to
    ``<log_dir>/fake_<network>.log``."""

    _MODULES: ClassVar[dict[str, str]] = {
        "x": "tests.fakes.fake_x", "mastodon": "tests.fakes.fake_mastodon",
        "bluesky": "tests.fakes.fake_bluesky"}
    _CONTROL: ClassVar[dict[str, str]] = {
        "x": "/2/_control", "mastodon": "/_control", "bluesky": "/_control"}
    _REQUESTS: ClassVar[dict[str, str]] = {
        "x": "/2/_requests", "mastodon": "/_requests", "bluesky": "/_requests"}

    def __init__(self, network: str, log_dir: Path, *, delay: float = 0.0,
                 fail_ratio: float = 0.0, seed: int | None = None) -> None:
        self.network = network
        self.log_dir = log_dir
        self.args = ["--delay", str(delay), "--fail-ratio", str(fail_ratio)]
        if seed is not None:
            self.args += ["--seed", str(seed)]
        if network == "x":
            self.args += ["--consumer-key", CREDENTIALS["TWITTER_API_KEY"],
                          "--consumer-secret", CREDENTIALS["TWITTER_API_SECRET"],
                          "--access-token", CREDENTIALS["TWITTER_ACCESS_TOKEN"],
                          "--access-token-secret", CREDENTIALS["TWITTER_ACCESS_TOKEN_SECRET"]]
        elif network == "mastodon":
            self.args += ["--token", MASTODON_TOKEN]
        else:
            self.args += ["--handle", BLUESKY_HANDLE, "--app-password", BLUESKY_APP_PASSWORD]
        self.proc: asyncio.subprocess.Process | None = None
        self.base_url = ""
        self.final_ledger: list[str] | None = None  # the LEDGER line printed at SIGTERM
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> StandaloneFake:
        with (self.log_dir / f"fake_{self.network}.log").open("wb") as errors:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self._MODULES[self.network], "--port", "0", *self.args,
                cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=errors)
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode().strip()
        name, _, url = line.partition("=")
        assert name == f"FAKE_{self.network.upper()}_URL" and url, line
        self.base_url = url
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    def env(self, suffix: str = "") -> dict[str, str]:
        return ENV[self.network](self.base_url, suffix)

    async def control(self, **spec: Any) -> dict[str, Any]:
        """POST the fake's ``_control`` (``{}``: just its state, ``in_flight`` included)."""
        assert self._http is not None
        async with self._http.post(self.base_url + self._CONTROL[self.network],
                                   json=spec) as response:
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer

    async def in_flight(self) -> int:
        """Posts the network is handling now (Bluesky's logins and look-ups aside)."""
        state = await self.control()
        return int(state.get("posts_in_flight", state["in_flight"]))

    async def requests(self) -> Any:
        assert self._http is not None
        async with self._http.get(self.base_url + self._REQUESTS[self.network]) as response:
            return await response.json()

    async def posts(self) -> list[Posted]:
        """What the network holds now, in order of acceptance."""
        assert self._http is not None
        if self.network == "x":
            async with self._http.get(self.base_url + "/2/ledger") as response:
                return [Posted(t["id"], t["text"]) for t in (await response.json())["tweets"]]
        if self.network == "mastodon":
            return [Posted(s["id"], s["text"], s["key"])
                    for s in (await self.requests())["statuses"]]
        async with self._http.get(self.base_url + "/_records") as response:
            records = (await response.json())["records"]
        return [Posted(r["uri"], r["value"].get("text", ""), r["rkey"]) for r in records
                if r["collection"] == "app.bsky.feed.post"]

    async def stop(self) -> None:
        """SIGTERM; keeps the ledger the fake prints on its way out."""
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = await asyncio.wait_for(self.proc.communicate(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return
        for line in out.decode().splitlines():
            if line.startswith("LEDGER "):
                self.final_ledger = json.loads(line[len("LEDGER "):])
