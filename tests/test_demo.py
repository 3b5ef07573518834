"""``make demo``: offline, self-contained, tweets within seconds, stops cleanly.

Runs what ``make demo`` runs (``python -m demo`` from the repository root), in its own process
group like a terminal job, with a time limit; and ``make demo`` itself on a pseudo-terminal,
stopped with Ctrl-C typed on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys

import psutil
import pytest

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


async def read_until(proc: asyncio.subprocess.Process, lines: list[str], marker: str) -> None:
    assert proc.stdout is not None
    async for raw in proc.stdout:
        lines.append(raw.decode("utf-8", "replace"))
        if marker in lines[-1]:
            return
    raise AssertionError(f"no {marker!r} in:\n" + "".join(lines))


def test_help_is_plain_text_for_a_terminal() -> None:
    done = subprocess.run([sys.executable, "-m", "demo", "--help"], cwd=ROOT,
                          env={**clean_environ(), "COLUMNS": "80"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for option in ("--seconds", "--publish-every", "--poll-interval", "--raw"):
        assert option in text
    assert "(default: 3)" in text and "(default: 2)" in text  # the defaults are shown
    assert "until Ctrl-C" in " ".join(text.split())
    assert re.search(r"^\s+python -m demo --seconds \d+ ", text, re.MULTILINE), text  # example
    assert "`" not in text and "**" not in text, text
    assert not re.search(r":(func|class|meth|mod|data|attr):", text), text
    assert max(len(line) for line in text.splitlines()) <= 80, text


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


async def test_second_ctrl_c_kills_a_bot_slow_to_stop() -> None:
    proc = await start_demo()
    lines: list[str] = []
    bot: psutil.Process | None = None
    try:
        async with asyncio.timeout(60):
            await read_until(proc, lines, "🐦 tweeted:")
            (bot,) = [p for p in psutil.Process(proc.pid).children(recursive=True)]
            bot.suspend()  # a bot that takes its time to stop (SIGTERM stays pending)
            os.killpg(proc.pid, signal.SIGINT)
            await read_until(proc, lines, "stopping")
            await asyncio.sleep(0.5)
            assert bot.is_running()
            os.killpg(proc.pid, signal.SIGINT)  # the impatient second Ctrl-C
            rest, _ = await proc.communicate()
    finally:
        if bot is not None:
            with contextlib.suppress(psutil.Error):
                bot.resume()
        kill_group(proc)
    text = "".join(lines) + rest.decode("utf-8", "replace")
    assert proc.returncode == 130, text  # not a clean stop: 128 + SIGINT
    assert "killing the bot" in text and "done:" in text, text
    assert "Traceback" not in text, text
    assert not psutil.pid_exists(bot.pid), "the bot outlived the demo"


# a terminal's session: the launcher leads it, the pseudo-terminal is its controlling terminal
_SESSION = ("import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
            "os.execvp(sys.argv[1], sys.argv[1:])")


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
async def test_ctrl_c_on_make_demo_exits_0() -> None:
    """Ctrl-C typed in the terminal reaches make too; make exits 0 all the same.

    And Ctrl-Z, which would leave a stopped demo and a terminal nobody answers, is ignored.
    """
    master, slave = os.openpty()
    env = {**clean_environ(), "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
    venv = os.environ.get("VENV", ".venv")
    # the Makefile's own recipe, with this Python and without (re)installing the venv
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SESSION, "make", "--no-print-directory",
        "-o", f"{venv}/.installed-stamp", "demo", f"PY={sys.executable}",
        cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    loop = asyncio.get_running_loop()
    output = bytearray()
    changed = asyncio.Event()
    closed = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every process of the session has closed the terminal
            data = b""
        if not data:
            loop.remove_reader(master)
            if not closed.done():
                closed.set_result(None)
        output.extend(data)
        changed.set()

    async def wait_for(marker: bytes) -> None:
        while marker not in output:
            assert not closed.done(), output.decode("utf-8", "replace")
            changed.clear()
            await changed.wait()

    loop.add_reader(master, readable)
    demo_pids: list[int] = []
    try:
        async with asyncio.timeout(60):
            await wait_for("🐦 tweeted:".encode())
            demo_pids = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
            os.write(master, b"\x1a")  # Ctrl-Z would stop the demo but not make: ignored
            await wait_for(b"Ctrl-C stops the demo")
            await asyncio.sleep(0.3)
            assert all(psutil.Process(pid).status() != psutil.STATUS_STOPPED for pid in demo_pids)
            os.write(master, b"\x03")  # Ctrl-C, typed
            await proc.wait()
            await closed
    finally:
        loop.remove_reader(master)
        os.close(master)
        for pid in demo_pids:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    text = output.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "stopping" in text and "done:" in text, text
    assert "Traceback" not in text and "Interrupt" not in text, text
    assert len(demo_pids) == 2, demo_pids  # the demo and the bot
    for pid in demo_pids:
        assert not psutil.pid_exists(pid), "the demo or the bot outlived make"
