"""``make demo`` (``python -m demo`` from the repository root): the whole bot, offline.

In this process, on loopback: a blog (:class:`tests.fakes.feed_server.FeedServer`) that
publishes a new article every few seconds, and a fake X API (:class:`tests.fakes.fake_x.FakeX`)
that checks the OAuth signature of every post like X does. Then the real service,
``python -m bot run``, as a subprocess pointed at both, with its database in a temporary
directory (deleted at the end). The terminal shows what happens: articles published, polls,
and each tweet as the fake X receives it.

Ctrl-C (or SIGTERM, or ``--seconds N``) stops everything cleanly: the bot gets SIGTERM and
finishes what it is sending, then the servers close; the exit status is 0. A second Ctrl-C
kills the bot at once.
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


def _now() -> str:
    return time.strftime("%H:%M:%S")


def say(icon: str, what: str, text: str = "") -> None:
    print(f"{_now()}  {icon} {what:<10} {text}".rstrip(), flush=True)


class Demo:
    def __init__(self, publish_every: float, poll_interval: float, raw: bool) -> None:
        self.publish_every = publish_every
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
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        self.stop.set()

    async def run(self, seconds: float | None) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
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
                stderr=asyncio.subprocess.STDOUT,
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
                await reader
                status = self.proc.returncode
                if status not in (0, -signal.SIGKILL) and self.interrupts <= 1:
                    print(f"the bot exited with status {status}", flush=True)
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
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop by itself after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--publish-every", type=float, default=3.0, metavar="S",
                        help="seconds between new articles on the blog (default 3)")
    parser.add_argument("--poll-interval", type=float, default=2.0, metavar="S",
                        help="the bot's POLL_INTERVAL (default 2)")
    parser.add_argument("--raw", action="store_true", help="show the bot's log lines as they are")
    args = parser.parse_args(argv)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True, errors="replace")  # type: ignore[union-attr]
    demo = Demo(args.publish_every, args.poll_interval, args.raw)
    try:
        return asyncio.run(demo.run(args.seconds))
    except KeyboardInterrupt:  # a Ctrl-C before the signal handlers were in place
        return 0


if __name__ == "__main__":
    sys.exit(main())
