"""``make demo``: offline, self-contained, tweets within seconds, stops cleanly.

Runs what ``make demo`` runs (``python -m demo`` from the repository root), in its own process
group like a terminal job, with a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys

import psutil

from tests.conftest import ROOT, clean_environ

TWEETED = re.compile(r"🐦 tweeted:\s+(.+)$", re.MULTILINE)


async def start_demo(*args: str) -> asyncio.subprocess.Process:
    env = {**clean_environ(), "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "demo", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )


def kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def test_make_demo_runs_this_module() -> None:
    assert re.search(r"^demo:.*\n\t\$\(PY\) -m demo$", (ROOT / "Makefile").read_text(),
                     re.MULTILINE)


async def test_demo_tweets_and_stops_by_itself() -> None:
    proc = await start_demo("--seconds", "12")
    try:
        async with asyncio.timeout(60):
            out, _ = await proc.communicate()
    finally:
        kill_group(proc)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    tweets = TWEETED.findall(text)
    assert len(tweets) >= 1, text
    assert re.search(r"http://127\.0\.0\.1:\d+/feed/posts/\d+", tweets[0]), tweets
    assert "🔄 polled" in text and "📝 published" in text
    assert "worker stopped" in text
    assert re.search(r"done: \d+ articles on the blog, [1-9]\d* tweeted\.", text), text
    assert "Traceback" not in text


async def test_ctrl_c_stops_everything_cleanly() -> None:
    proc = await start_demo()
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            async for raw in proc.stdout:  # until the first tweet
                lines.append(raw.decode("utf-8", "replace"))
                if "🐦 tweeted:" in lines[-1]:
                    break
            bot_pids = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
            assert bot_pids, "the bot runs as a child process"
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            rest, _ = await proc.communicate()
    finally:
        kill_group(proc)
    text = "".join(lines) + rest.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "stopping" in text and "done:" in text, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    for pid in bot_pids:
        assert not psutil.pid_exists(pid), "the bot outlived the demo"
