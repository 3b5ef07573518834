"""``make demo``: offline, self-contained, posts to X, Mastodon and Bluesky within seconds,
stops cleanly.

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

X_POST = "🐦 X        │"  # the first line of a post as the fake X received it
LABELS = {"🐦 X": "x", "🐘 Mastodon": "mastodon", "🦋 Bluesky": "bluesky"}
_HEAD = re.compile(r"^\d\d:\d\d:\d\d  (🐦 X|🐘 Mastodon|🦋 Bluesky) *│ (.*)$")
_MORE = re.compile(r"^ +│ (.*)$")
_LENGTH = re.compile(r"\[length (\d+)/(\d+)\]")
_SUMMARY = re.compile(r"^ +\S+ (X|Mastodon|Bluesky) +(\d+) posts?: articles ([^;]+); "
                      r"(\d+) duplicates?(.*)$", re.MULTILINE)


def posts_shown(text: str) -> dict[str, list[str]]:
    """Each network's posts as the demo printed them, a post's wrapped lines joined."""
    posts: dict[str, list[list[str]]] = {network: [] for network in LABELS.values()}
    current: list[str] | None = None
    for line in text.splitlines():
        head = _HEAD.match(line)
        if head is not None:
            current = [head.group(2)]
            posts[LABELS[head.group(1)]].append(current)
        elif current is not None and (more := _MORE.match(line)) is not None:
            current.append(more.group(1))
        else:
            current = None
    return {network: [" ".join(lines) for lines in shown] for network, shown in posts.items()}


def article_number(post: str) -> int:
    """The article a post announces, from its full link (Bluesky's: the one it links to)."""
    (number,) = re.findall(r"http://127\.0\.0\.1:\d+/posts/(\d+)-", post)
    return int(number)


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


async def test_demo_posts_every_article_once_on_each_network_and_stops_by_itself() -> None:
    proc = await start_demo("--seconds", "12")
    try:
        async with asyncio.timeout(60):
            out, _ = await proc.communicate()
    finally:
        kill_group(proc)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "Traceback" not in text and "⚠️" not in text, text  # no warning, no error
    assert "🔄 polled" in text and "📝 published" in text
    assert "worker stopped" in text
    done = re.search(r"done: (\d+) articles on the blog, ([1-9]\d*) tweeted\.", text)
    assert done, text
    articles, tweeted = int(done.group(1)), int(done.group(2))
    # BACKFILL=1: the newest of the articles there at the first poll, then every new one
    first = re.search(r"first poll: (\d+) articles already there", text)
    assert first, text
    announced = list(range(int(first.group(1)), articles + 1))
    assert len(announced) >= 2, text  # the blog published while the bot ran
    assert tweeted == len(announced), text

    posts = posts_shown(text)
    for network, shown in posts.items():  # each network got every article, once
        assert sorted(article_number(post) for post in shown) == announced, (network, text)
    summary = {m.group(1): m.groups()[1:] for m in _SUMMARY.finditer(text)}
    for label in ("X", "Mastodon", "Bluesky"):
        count, numbers, duplicates, rest = summary[label]
        assert (int(count), numbers, int(duplicates)) == \
            (len(announced), f"{announced[0]}–{announced[-1]}", 0), (label, text)
        assert "missing" not in rest, (label, text)

    # each network its own text: X's 280 weighted characters cut the summary short,
    # Mastodon's 500 hold it whole, Bluesky writes the link short and links it in full
    for network, limit in (("x", 280), ("mastodon", 500), ("bluesky", 300)):
        for post in posts[network]:
            length = _LENGTH.search(post)
            assert length and int(length.group(2)) == limit and \
                0 < int(length.group(1)) <= limit, (network, post)
    by_article = {network: {article_number(post): post for post in shown}
                  for network, shown in posts.items()}
    for number in announced:
        x, mastodon, bluesky = (by_article[n][number] for n in ("x", "mastodon", "bluesky"))
        assert "…" in x and "…" not in mastodon and len(mastodon) > len(x), (x, mastodon)
        for post in (x, mastodon):
            assert re.search(r"http://127\.0\.0\.1:\d+/posts/\d+-[a-z0-9-]+ ", post), post
        assert re.search(r"(?<!/)127\.0\.0\.1:\d+/posts/[a-z0-9-]+\.\.\. ", bluesky), bluesky
        assert re.search(r"\[link → http://127\.0\.0\.1:\d+/posts/\d+-[a-z0-9-]+\]",
                         bluesky), bluesky
        assert re.search(r"\[link card: .+ \(part \d+\)\]", bluesky), bluesky


async def test_ctrl_c_stops_everything_cleanly() -> None:
    proc = await start_demo()
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            async for raw in proc.stdout:  # until the first tweet
                lines.append(raw.decode("utf-8", "replace"))
                if X_POST in lines[-1]:
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
            await read_until(proc, lines, X_POST)
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
            await wait_for(X_POST.encode())
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
