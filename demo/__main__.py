"""``make demo`` (``python -m demo`` from the repository root): the whole bot, offline.

In this process, on loopback: a blog (:class:`tests.fakes.feed_server.FeedServer`) that
publishes a new article every few seconds, and a fake X API (:class:`tests.fakes.fake_x.FakeX`)
that checks the OAuth signature of every post like X does. Then the real service,
``python -m bot run``, as a subprocess pointed at both, with its database in a temporary
directory (deleted at the end). The terminal shows what happens: articles published, polls,
and each tweet as the fake X receives it.

Ctrl-C (or SIGTERM, or ``--seconds N``) stops everything cleanly: the bot gets SIGTERM and
finishes what it is sending, then the servers close; the exit status is 0. A second Ctrl-C
kills the bot at once; the exit status is then 130.

Under ``make demo`` the terminal sends Ctrl-C to make as well, and GNU make always dies of
it (status 130), whatever its recipe exits with. So when the demo shares a process group with
a parent (make, a script), it takes the terminal's foreground (what a shell does for a job,
:class:`Terminal`): Ctrl-C then reaches only the demo and the bot, make sees the demo exit 0
and exits 0. Ctrl-Z is ignored meanwhile: it would stop the demo but not make, and leave the
terminal with no one to answer it. The :data:`DESCRIPTION` and :data:`EPILOG` below, not this
docstring, are what ``--help`` shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python -m demo` from elsewhere: find bot/ and tests/
    sys.path.insert(0, str(ROOT))

from tests.fakes.fake_x import FakeX  # noqa: E402
from tests.fakes.feed_server import Blog, FeedServer  # noqa: E402

CREDENTIALS = {
    "TWITTER_API_KEY": "demo-consumer-key",
    "TWITTER_API_SECRET": "demo-consumer-secret",
    "TWITTER_ACCESS_TOKEN": "demo-access-token",
    "TWITTER_ACCESS_TOKEN_SECRET": "demo-access-token-secret",
}
# the bot's own settings from the caller's environment do not leak into the demo
_BOT_SETTING = re.compile(r"^(FEED_|TWITTER_|DATABASE_|POLL_|TWEET_|DRY_RUN|BACKFILL|MAX_|HTTP_|"
                          r"LOG_|HASHTAGS|AUTH_|POST_|SHUTDOWN_)")
TITLES = (
    "Why asyncio tasks need strong references",
    "Conditional GET: ETag and Last-Modified in practice",
    "SQLite in WAL mode for small services",
    "Counting to 280: how X weighs a tweet",
    "Rate limits are a shared resource",
    "Graceful shutdown with SIGTERM",
    "Exactly once, or how to not tweet twice",
    "Parsing feeds off the event loop",
)
STOP_GRACE = 25.0  # seconds the bot gets to stop after SIGTERM before it is killed
EXIT_FORCED = 130  # a second Ctrl-C killed the bot: 128 + SIGINT, like an interrupted program

# `--help`: plain text for a terminal, under 80 columns
DESCRIPTION = """\
Run the whole bot offline, on this machine only: a local blog that publishes
a new article every few seconds, a local fake X API that checks the OAuth
signature of every post like X does, and the real service (python -m bot run)
pointed at both, with its database in a temporary directory. The terminal
shows the articles published, the bot's polls and each tweet it sends.

Ctrl-C stops everything cleanly (the bot finishes what it is sending) and
exits 0; a second Ctrl-C kills the bot at once and exits 130."""
EPILOG = """\
examples:
  make demo                     the same as: python -m demo
  python -m demo --seconds 30   stop by itself after 30 seconds
  python -m demo --raw          show what the bot logs, line by line"""


def _now() -> str:
    return time.strftime("%H:%M:%S")


def say(icon: str, what: str, text: str = "") -> None:
    print(f"{_now()}  {icon} {what:<10} {text}".rstrip(), flush=True)


class Terminal:
    """The terminal's foreground, taken from a parent in the same process group (make).

    A terminal sends Ctrl-C to its whole foreground process group. Under ``make demo`` that is
    make too, and GNU make, once its recipe has exited, kills itself with the same SIGINT: the
    shell says 130 even though the demo stopped cleanly. Like a shell starting a job, the demo
    moves to a process group of its own (the bot, its child, follows) and makes it the
    foreground one; :meth:`give_back` returns the terminal before the demo exits. Nothing
    happens without a controlling terminal, in a background job, or when the demo already leads
    its process group (``python -m demo`` typed in a shell).
    """

    def __init__(self) -> None:
        self.fd: int | None = None
        self.previous = 0

    def take(self) -> bool:
        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:  # no controlling terminal
            return False
        group = os.getpgrp()
        try:
            if os.tcgetpgrp(fd) != group or group == os.getpid():
                os.close(fd)
                return False
            with _no_sigttou():  # a background group may not set the foreground otherwise
                os.setpgid(0, 0)
                try:
                    os.tcsetpgrp(fd, os.getpid())
                except OSError:
                    os.setpgid(0, group)
                    raise
        except OSError:
            os.close(fd)
            return False
        self.fd, self.previous = fd, group
        return True

    def give_back(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        with contextlib.suppress(OSError), _no_sigttou():
            if os.tcgetpgrp(fd) == os.getpgrp():
                os.tcsetpgrp(fd, self.previous)  # fails if make is gone: nothing to give back
        os.close(fd)


@contextlib.contextmanager
def _no_sigttou() -> Iterator[None]:
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _bot_signals(ignore_tstp: bool) -> Callable[[], None]:
    """Signal dispositions for the bot, set between fork and exec (ignored ones survive exec).

    SIGINT is ignored until the bot's own handler is in place: a Ctrl-C during its start-up is
    no KeyboardInterrupt traceback, the SIGTERM the demo sends stops it. SIGTSTP is ignored
    while the demo holds the terminal (see :class:`Terminal`).
    """
    def preexec() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if ignore_tstp:
            signal.signal(signal.SIGTSTP, signal.SIG_IGN)
    return preexec


class Demo:
    def __init__(self, publish_every: float, poll_interval: float, raw: bool,
                 holds_terminal: bool = False) -> None:
        self.publish_every = publish_every
        self.holds_terminal = holds_terminal
        self.poll_interval = poll_interval
        self.raw = raw
        self.blog_server = FeedServer()
        self.fake_x = FakeX(consumer_key=CREDENTIALS["TWITTER_API_KEY"],
                            consumer_secret=CREDENTIALS["TWITTER_API_SECRET"],
                            access_token=CREDENTIALS["TWITTER_ACCESS_TOKEN"],
                            access_token_secret=CREDENTIALS["TWITTER_ACCESS_TOKEN_SECRET"])
        self.blog: Blog  # added once the server listens
        self.proc: asyncio.subprocess.Process | None = None
        self.stop = asyncio.Event()
        self.interrupts = 0
        self.published = 0
        self.bot_output: list[str] = []

    # -- the pieces ------------------------------------------------------------------------

    def _bot_env(self, workdir: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not _BOT_SETTING.match(k)}
        env.update(CREDENTIALS)
        env.update({
            "FEED_URLS": self.blog.url,
            "TWITTER_API_BASE_URL": self.fake_x.base_url,
            "DATABASE_PATH": os.path.join(workdir, "bot.sqlite3"),
            "POLL_INTERVAL": f"{self.poll_interval:g}",
            "BACKFILL": "1",
            "TWEET_TEMPLATE": "{title} {url} {hashtags}",  # hashtags from the categories
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": "0",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",  # the polls that find nothing new (304) are DEBUG
            "SHUTDOWN_GRACE": "5",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH")))),
        })
        return env

    async def _publish(self) -> None:
        for n in itertools.count(len(self.blog.articles) + 1):
            await asyncio.sleep(self.publish_every)
            title = f"{TITLES[(n - 1) % len(TITLES)]} (part {n})"
            self.blog.publish(title, summary=f"Article number {n} of the demo blog.",
                              categories=("python", "demo"))
            self.published += 1
            say("📝", "published", f'"{title}"')

    async def _watch_tweets(self) -> None:
        shown = 0
        while True:
            while shown < len(self.fake_x.ledger):
                tweet = self.fake_x.ledger[shown]
                shown += 1
                say("🐦", "tweeted:", tweet.text.replace("\n", " ⏎ "))
            await asyncio.sleep(0.1)

    async def _read_bot(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.bot_output.append(line)
            self._show(line)

    def _show(self, line: str) -> None:
        if self.raw:
            print(f"{_now()}    bot       {line}", flush=True)
            return
        try:
            record = json.loads(line)
        except ValueError:
            if line.strip():
                say("  ", "bot", line)
            return
        if not isinstance(record, dict):
            return
        event, level = record.get("event", ""), record.get("level", "INFO")
        f = record.get
        if event == "http_listening":
            url = str(f("url", ""))
            say("🩺", "bot http", f"{url}  and  {url.rsplit('/', 1)[0]}/metrics")
        elif event == "worker_started":
            say("🤖", "bot", f"started: {f('feeds')} feed(s), a poll every {f('poll_interval')}")
        elif event == "feed_baselined":
            say("🔄", "polled", f"first poll: {f('entries')} articles already there; tweeting "
                "the newest (BACKFILL=1), the rest are only recorded")
        elif event == "feed_polled":
            if f("status") == "304":
                say("🔄", "polled", "nothing new (304 Not Modified)")
            else:
                say("🔄", "polled", f"{f('new')} new article(s) of {f('entries')}")
        elif event == "post_sent":
            say("✅", "posted", f"post {f('id')} is tweet {f('tweet_id')}")
        elif event in ("shutdown_requested", "worker_stopped"):
            say("🛑", "bot", event.replace("_", " "))
        elif level in ("WARNING", "ERROR", "CRITICAL"):
            say("⚠️ ", level.lower(), str(f("message", line)))

    # -- the whole ---------------------------------------------------------------------------

    def _on_signal(self) -> None:
        self.interrupts += 1
        if self.interrupts > 1 and self.proc is not None and self.proc.returncode is None:
            print(f"{_now()}  killing the bot (second stop request)", flush=True)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        self.stop.set()

    def _on_suspend(self) -> None:
        say("  ", "Ctrl-Z", "ignored under make (it would stop the demo, not make); "
            "Ctrl-C stops the demo")

    async def run(self, seconds: float | None) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        if self.holds_terminal:
            loop.add_signal_handler(signal.SIGTSTP, self._on_suspend)
        workdir = tempfile.TemporaryDirectory(prefix="feed-tweeter-demo-")
        await self.blog_server.start()
        await self.fake_x.start()
        self.blog = self.blog_server.add_blog("/feed.xml", title="Demo blog")
        for n in (1, 2, 3):
            self.blog.publish(f"{TITLES[n - 1]} (part {n})",
                              summary=f"Article number {n} of the demo blog.")
        print(f"feed-tweeter demo: everything on 127.0.0.1, nothing leaves this machine. "
              f"Ctrl-C stops it.\n"
              f"  blog    {self.blog.url}  (3 articles; a new one every "
              f"{self.publish_every:g} s)\n"
              f"  fake X  {self.fake_x.base_url}/2/tweets  (checks OAuth signatures like X)\n"
              f"  bot     python -m bot run  (polls every {self.poll_interval:g} s; "
              f"database in {workdir.name})\n", flush=True)
        code = 0
        tasks: list[asyncio.Task[None]] = []
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=workdir.name,
                env=self._bot_env(workdir.name), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, preexec_fn=_bot_signals(self.holds_terminal),
            )
            reader = asyncio.create_task(self._read_bot())
            tasks = [asyncio.create_task(self._publish()),
                     asyncio.create_task(self._watch_tweets())]
            exited = asyncio.create_task(self.proc.wait())
            stopped = asyncio.create_task(self.stop.wait())
            done, _ = await asyncio.wait({exited, stopped}, timeout=seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if exited in done:
                await reader
                print(f"\nthe bot stopped by itself (exit status {self.proc.returncode}); "
                      "its last lines:", flush=True)
                print("\n".join(self.bot_output[-15:]), flush=True)
                code = 1
            else:
                tasks[0].cancel()  # the blog stops publishing
                print(f"\n{_now()}  stopping: SIGTERM to the bot, which finishes what it is "
                      "sending…", flush=True)
                with contextlib.suppress(ProcessLookupError):
                    self.proc.terminate()
                try:
                    async with asyncio.timeout(STOP_GRACE):
                        await exited
                except TimeoutError:
                    print("the bot did not stop in time: killing it", flush=True)
                    self.proc.kill()
                    await exited
                    code = 1
                await reader
                status = self.proc.returncode
                if status == -signal.SIGKILL and self.interrupts > 1:
                    code = EXIT_FORCED  # a second Ctrl-C killed it: not a clean stop
                elif code == 0 and status not in (0, -signal.SIGTERM):  # SIGTERM: before
                    print(f"the bot exited with status {status}", flush=True)  # it started
                    code = 1
            await asyncio.sleep(0.2)  # let the tweet watcher print the last ones
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.proc is not None and self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
            await self.fake_x.close()
            await self.blog_server.close()
            workdir.cleanup()
        print(f"{_now()}  done: {len(self.blog.articles)} articles on the blog, "
              f"{len(self.fake_x.ledger)} tweeted.", flush=True)
        return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=DESCRIPTION,
                                     epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=None, metavar="N",
                        help="stop by itself after N seconds (default: run until Ctrl-C)")
    parser.add_argument("--publish-every", type=float, default=3.0, metavar="S",
                        help="seconds between new articles on the blog (default: 3)")
    parser.add_argument("--poll-interval", type=float, default=2.0, metavar="S",
                        help="seconds between the bot's polls, its POLL_INTERVAL "
                             "(default: 2)")
    parser.add_argument("--raw", action="store_true",
                        help="show the bot's log lines (JSON) as they are instead of a "
                             "summary (default: off)")
    args = parser.parse_args(argv)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True, errors="replace")  # type: ignore[union-attr]
    terminal = Terminal()
    try:
        demo = Demo(args.publish_every, args.poll_interval, args.raw,
                    holds_terminal=terminal.take())
        return asyncio.run(demo.run(args.seconds))
    except KeyboardInterrupt:  # a Ctrl-C before the signal handlers were in place
        return 0
    finally:
        terminal.give_back()


if __name__ == "__main__":
    sys.exit(main())
