"""``make demo`` (``python -m demo`` from the repository root): the whole bot, offline.

In this process, on loopback: a blog (:class:`tests.fakes.feed_server.FeedServer`) that
publishes a new article every few seconds, and one fake per network the bot posts to: X
(:class:`tests.fakes.fake_x.FakeX`, which checks the OAuth signature of every post like X
does), a Mastodon instance (:class:`tests.fakes.fake_mastodon.FakeMastodon`: bearer token, the
instance's 500 characters) and a Bluesky PDS (:class:`tests.fakes.fake_bluesky.FakePDS`:
app-password session, post records with their link facet and card). Then the real service,
``python -m bot run``, as a subprocess configured by environment variables only, as a user
would (``TWITTER_*``, ``MASTODON_*``, ``BLUESKY_*`` pointed at the fakes), with its database
in a temporary directory (deleted at the end). The terminal shows what happens: articles
published, polls, and each post as the network's fake receives it, one block per network
(each network gets its own text: X's 280 weighted characters, Mastodon's 500, Bluesky's 300
with the link written short and made clickable by a facet); at the end, the posts on each
network, and any article missing or posted twice.

Ctrl-C (or SIGTERM, or ``--seconds N``) stops everything cleanly: the bot gets SIGTERM and
finishes what it is sending, then the servers close; the exit status is 0. ``--seconds N``
first stops the blog and gives the bot a little time to announce its last articles
everywhere. A second Ctrl-C kills the bot at once; the exit status is then 130.

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
import collections
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python -m demo` from elsewhere: find bot/ and tests/
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from bot.networks import BLUESKY, X, mastodon_rule  # noqa: E402
from tests.fakes.fake_bluesky import POST_COLLECTION, FakePDS  # noqa: E402
from tests.fakes.fake_mastodon import FakeMastodon  # noqa: E402
from tests.fakes.fake_x import FakeX  # noqa: E402
from tests.fakes.feed_server import Article, Blog, FeedServer  # noqa: E402

CREDENTIALS = {
    "TWITTER_API_KEY": "demo-consumer-key",
    "TWITTER_API_SECRET": "demo-consumer-secret",
    "TWITTER_ACCESS_TOKEN": "demo-access-token",
    "TWITTER_ACCESS_TOKEN_SECRET": "demo-access-token-secret",
    "MASTODON_ACCESS_TOKEN": "demo-mastodon-token",
    "BLUESKY_HANDLE": "feedbot.demo.test",
    "BLUESKY_APP_PASSWORD": "demo-apps-pass-word",  # the shape of an app password
}
# the bot's own settings from the caller's environment do not leak into the demo
_BOT_SETTING = re.compile(r"^(FEED_|TWITTER_|MASTODON_|BLUESKY_|X_|DATABASE_|POLL_|TWEET_|"
                          r"DRY_RUN|BACKFILL|MAX_|HTTP_|LOG_|HASHTAGS|AUTH_|POST_|SHUTDOWN_|"
                          r"MENTIONS|PARSE_)")
TEMPLATE = "{title} — {summary} {url} {hashtags}"  # hashtags from the categories
# (title, summary): the summary is longer than X leaves room for, not Mastodon
ARTICLES = (
    ("Why asyncio tasks need strong references",
     "The event loop keeps only a weak reference to the tasks it runs: a task nobody else "
     "holds can be garbage-collected halfway through its work, without a word. Keep every "
     "background task in a set and drop it when it is done; here is the pattern, and the "
     "bug it prevents."),
    ("Conditional GET: ETag and Last-Modified in practice",
     "Polling a feed every few minutes costs almost nothing when the server can answer "
     "304 Not Modified. Send If-None-Match and If-Modified-Since, keep what the server sent "
     "back, and beware of the servers that get it wrong: weak ETags, clocks that go "
     "backwards."),
    ("SQLite in WAL mode for small services",
     "One file, no server, and with write-ahead logging readers never block the writer. For "
     "a service of one process it is all the database it needs: what WAL changes, why one "
     "writer matters, and why a crash in the middle of a transaction leaves nothing "
     "half-written."),
    ("Counting to 280: how X weighs a tweet",
     "A tweet is not 280 characters but 280 weights: a link counts 23 whatever its length, "
     "an emoji or a CJK character two, the rest one. Count the way X does before sending, and "
     "a long title is shortened by you, with an ellipsis, rather than refused by X."),
    ("Rate limits are a shared resource",
     "Every post the bot sends draws on the same allowance, whichever feed it came from. One "
     "gate per network, shared by all the posts in flight, waits for the reset the server "
     "names in its headers instead of hammering it; and polling never waits for posting."),
    ("Graceful shutdown with SIGTERM",
     "When the service manager asks the bot to stop, it stops polling at once, gives the "
     "posts already on their way a few seconds to finish, and keeps the others in its "
     "database for the next start. Nothing is lost, and nothing is posted twice."),
    ("Exactly once, or how to not tweet twice",
     "A timeout after a post was sent does not mean it failed. Choose a key before the first "
     "attempt and ask the network afterwards: Mastodon recognises an Idempotency-Key, "
     "Bluesky a record key, and X answers that the content is a duplicate."),
    ("Parsing feeds off the event loop",
     "Parsing a large feed is plain CPU work, and on the event loop it would stall every "
     "other feed and every post in flight. Hand the bytes to a worker, take the entries back, "
     "and prove the fast parser equal to feedparser on a corpus of real feeds."),
)
INITIAL_ARTICLES = 3  # on the blog before the bot starts; BACKFILL=1 announces the newest
STOP_GRACE = 25.0  # seconds the bot gets to stop after SIGTERM before it is killed
EXIT_FORCED = 130  # a second Ctrl-C killed the bot: 128 + SIGINT, like an interrupted program

# `--help`: plain text for a terminal, under 80 columns
DESCRIPTION = """\
Run the whole bot offline, on this machine only: a local blog that publishes
a new article every few seconds, local fakes of X (it checks the OAuth
signature of every post like X does), of a Mastodon instance and of a Bluesky
server, and the real service (python -m bot run) configured by environment
variables as you would configure it, posting to all three. Its database is in
a temporary directory.

The terminal shows the articles published, the bot's polls and each post as
its network receives it: every network gets its own text (X's 280 weighted
characters, Mastodon's 500, Bluesky's 300 with the link written short and a
link card). At the end: the posts on each network, none twice.

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


def slug(title: str, most: int = 32) -> str:
    """``why-asyncio-tasks-need-strong``: a link's last part, as blogs make them."""
    words = re.sub(r"[^a-z0-9]+", " ", title.lower()).split()
    out = ""
    for word in words:
        if out and len(out) + 1 + len(word) > most:
            break
        out = f"{out}-{word}" if out else word
    return out


def spans(numbers: Iterable[int]) -> str:
    """``3–7, 9``: article numbers as ranges."""
    ordered = sorted(set(numbers))
    parts = []
    for _, run in itertools.groupby(enumerate(ordered), lambda pair: pair[1] - pair[0]):
        run_list = [n for _, n in run]
        parts.append(str(run_list[0]) if len(run_list) == 1 else f"{run_list[0]}–{run_list[-1]}")
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Landed:
    """One post as a network's fake received it."""

    text: str
    link: str | None  # the article link it carries (Bluesky: its facet's)
    card: str | None = None  # Bluesky: the link card's title


@dataclass(frozen=True, slots=True)
class Network:
    """How the demo shows one destination."""

    label: str
    icon: str

    @property
    def heading(self) -> str:
        return f"{self.icon} {self.label:<8} │"


X_NET = Network("X", "🐦")
MASTODON_NET = Network("Mastodon", "🐘")
BLUESKY_NET = Network("Bluesky", "🦋")
NETWORKS = (X_NET, MASTODON_NET, BLUESKY_NET)
_LINK = re.compile(r"https?://\S+")


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
        self.fake_mastodon = FakeMastodon(token=CREDENTIALS["MASTODON_ACCESS_TOKEN"])
        self.fake_bluesky = FakePDS(handle=CREDENTIALS["BLUESKY_HANDLE"],
                                    app_password=CREDENTIALS["BLUESKY_APP_PASSWORD"])
        self.blog: Blog  # added once the server listens
        self.proc: asyncio.subprocess.Process | None = None
        self.stop = asyncio.Event()
        self.interrupts = 0
        self.published = 0
        self.bot_output: list[str] = []
        self.shown = dict.fromkeys(NETWORKS, 0)
        self.served: list[int] = []  # articles on the blog at each 200 answer to a poll
        self.polled = 0  # articles in the feed at the bot's last poll that was shown
        self.progress = asyncio.Event()  # set when a post is shown
        self.baseline: int | None = None  # articles on the blog at the bot's first poll
        self.width = max(60, min(120, shutil.get_terminal_size((100, 24)).columns))

    # -- the pieces ------------------------------------------------------------------------

    def _bot_env(self, workdir: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not _BOT_SETTING.match(k)}
        env.update(CREDENTIALS)
        env.update({
            "FEED_URLS": self.blog.url,
            "TWITTER_API_BASE_URL": self.fake_x.base_url,
            "MASTODON_BASE_URL": self.fake_mastodon.base_url,
            "BLUESKY_SERVICE_URL": self.fake_bluesky.base_url,
            "DATABASE_PATH": os.path.join(workdir, "bot.sqlite3"),
            "POLL_INTERVAL": f"{self.poll_interval:g}",
            "BACKFILL": "1",
            "TWEET_TEMPLATE": TEMPLATE,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": "0",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",  # the polls that find nothing new (304) are DEBUG
            "SHUTDOWN_GRACE": "5",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH")))),
        })
        return env

    def _publish_one(self, n: int) -> Article:
        title, summary = ARTICLES[(n - 1) % len(ARTICLES)]
        path = f"/posts/{n}-{slug(title)}"
        article = self.blog.publish(f"{title} (part {n})", link=self.blog_server.url(path),
                                    summary=summary, categories=("python", "demo"))

        async def page(request: web.Request) -> web.Response:  # the link opens the article
            return web.Response(text=f"<!doctype html><title>{escape(article.title)}</title>"
                                f"<h1>{escape(article.title)}</h1><p>{escape(summary)}</p>",
                                content_type="text/html")

        self.blog_server.set_handler(path, page)
        return article

    async def _serve_feed(self, request: web.Request) -> web.StreamResponse:
        """The blog's feed, noting how many articles each 200 answer held (the polls'
        log lines then say how many were new)."""
        response = await self.blog.handle(request)
        if response.status == 200:
            self.served.append(len(self.blog.articles))
        return response

    async def _publish(self) -> None:
        for n in itertools.count(len(self.blog.articles) + 1):
            await asyncio.sleep(self.publish_every)
            article = self._publish_one(n)
            self.published += 1
            say("📝", "published", f'"{article.title}"')

    # -- what each network received ----------------------------------------------------------

    def landed(self, network: Network) -> list[Landed]:
        if network is X_NET:
            return [Landed(t.text, self._link_in(t.text)) for t in self.fake_x.ledger]
        if network is MASTODON_NET:
            return [Landed(s.text, self._link_in(s.text)) for s in self.fake_mastodon.statuses]
        posts = []
        for record in self.fake_bluesky.records:
            if record.collection != POST_COLLECTION:
                continue
            value = record.value
            links = [feature.get("uri") for facet in value.get("facets") or ()
                     for feature in facet.get("features", ())
                     if feature.get("$type") == "app.bsky.richtext.facet#link"]
            external = (value.get("embed") or {}).get("external") or {}
            posts.append(Landed(record.text, links[0] if links else None,
                                external.get("title")))
        return posts

    @staticmethod
    def _link_in(text: str) -> str | None:
        found = _LINK.findall(text)
        return found[-1] if found else None

    def articles_on(self, network: Network) -> collections.Counter[int | None]:
        """How many posts the network has of each article (None: of no article)."""
        numbers = {article.link: article.n for article in self.blog.articles}
        return collections.Counter(numbers.get(post.link or "") for post in self.landed(network))

    def _measure(self, network: Network, text: str) -> str:
        if network is X_NET:
            return f"{X.measure(text)}/{X.limit}"
        if network is MASTODON_NET:
            rule = mastodon_rule(self.fake_mastodon.max_characters,
                                 self.fake_mastodon.characters_reserved_per_url)
            return f"{rule.measure(text)}/{rule.limit}"
        return f"{BLUESKY.measure(text)}/{BLUESKY.limit}"

    def _show_post(self, network: Network, post: Landed) -> None:
        """One post: the network's name, its text wrapped beside it, its length and the
        network's limit (as the bot measures them: bot.networks); on Bluesky, where its link
        facet points and its link card's title."""
        head = f"{_now()}  {network.heading} "
        indent = " " * (len(_now()) + 2 + 2 + 1 + 8) + " │ "  # an icon is 2 columns wide
        width = max(30, self.width - len(indent))
        length = f"[length {self._measure(network, post.text)}]"
        paragraphs = [post.text.replace("\n", " ⏎ ") + "  " + length]
        if network is BLUESKY_NET:  # the link in the text is short: a facet holds it whole
            if post.link:
                paragraphs.append(f"[link → {post.link}]")
            paragraphs.append(f"[link card: {post.card}]" if post.card else "[no link card]")
        lines = textwrap.wrap(paragraphs[0], width, break_long_words=False,
                              break_on_hyphens=False) + paragraphs[1:]  # a link is not cut
        print(head + lines[0], flush=True)
        for line in lines[1:]:
            print(indent + line, flush=True)

    def _show_new_posts(self) -> None:
        for network in NETWORKS:
            posts = self.landed(network)
            while self.shown[network] < len(posts):
                self._show_post(network, posts[self.shown[network]])
                self.shown[network] += 1
                self.progress.set()

    async def _watch_posts(self) -> None:
        while True:
            self._show_new_posts()
            await asyncio.sleep(0.1)

    def expected(self, polled_only: bool = True) -> list[int]:
        """The articles the bot announces: the newest of those there at its first poll
        (BACKFILL=1), and every one published after, up to its last poll (or to the last
        on the blog: ``polled_only=False``)."""
        if self.baseline is None:
            return []
        last = self.served[-1] if polled_only and self.served else len(self.blog.articles)
        return list(range(self.baseline, last + 1))

    def all_announced(self) -> bool:
        """Every article on the blog is on every network (once)."""
        want = collections.Counter(self.expected(polled_only=False))
        return all(self.articles_on(network) == want for network in NETWORKS)

    def summary(self) -> list[str]:
        """Per destination: its posts, which articles, none twice, none missing."""
        expected = self.expected()
        lines = []
        for network in NETWORKS:
            posts = self.landed(network)
            numbers = self.articles_on(network)
            others = numbers.pop(None, 0)
            found = [n for n in numbers if n is not None]
            duplicates = sum(count - 1 for count in numbers.values())
            missing = [n for n in expected if n not in numbers]
            line = (f"{network.icon} {network.label:<8}  {len(posts)} post"
                    f"{'' if len(posts) == 1 else 's'}: "
                    f"articles {spans(found) or 'none'}; {duplicates} duplicate"
                    f"{'' if duplicates == 1 else 's'}")
            if missing:
                line += f"; missing {spans(missing)}"
            if others:
                line += f"; {others} not of an article on the blog"
            if network is BLUESKY_NET:
                cards = sum(1 for p in posts if p.card)
                line += f"; {cards} with a link card"
            lines.append(line)
        return lines

    # -- the bot's output --------------------------------------------------------------------

    async def _read_bot(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.bot_output.append(line)
            self._show(line)

    def _show(self, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("event") == "feed_baselined":
            self.baseline = self.polled = self.served[0] if self.served else INITIAL_ARTICLES
        if self.raw:
            print(f"{_now()}    bot       {line}", flush=True)
            return
        if record is None:
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
            say("🤖", "bot", f"started: {f('feeds')} feed(s), a poll every "
                f"{f('poll_interval')}, posting to X, Mastodon and Bluesky")
        elif event == "mastodon_limits":
            say("🐘", "bot", f"asked the Mastodon instance its limit: {f('max_characters')} "
                f"characters, a link counts {f('url_characters')}")
        elif event == "feed_baselined":
            say("🔄", "polled", f"first poll: {f('entries')} articles already there; "
                "announcing the newest (BACKFILL=1), the rest are only recorded")
        elif event == "feed_polled":
            if f("status") == "304":
                say("🔄", "polled", "nothing new (304 Not Modified)")
            else:  # counted here: the bot's new= counts posts, one per article and network
                now = self.served[-1] if self.served else self.polled
                new, self.polled = now - self.polled, now
                say("🔄", "polled", f"{new} new article{'' if new == 1 else 's'} "
                    f"({f('entries')} in the feed)")
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

    async def _settle(self, exited: asyncio.Task[int]) -> None:
        """Time is up: the blog stops, the bot gets a few polls' time to announce the last
        articles everywhere (a Ctrl-C or the bot's exit cuts it short)."""
        if self.all_announced():
            return
        say("⏳", "time's up", "the blog stops publishing; waiting for the bot to announce "
            "the last article everywhere")
        waiting = asyncio.create_task(self._announced_everywhere())
        stopped = asyncio.create_task(self.stop.wait())
        await asyncio.wait({waiting, stopped, exited}, timeout=3 * self.poll_interval + 10,
                           return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        stopped.cancel()

    async def _announced_everywhere(self) -> None:
        while not self.all_announced():
            self.progress.clear()
            await self.progress.wait()

    def _banner(self, workdir: str) -> str:
        x, md, bs = self.fake_x, self.fake_mastodon, self.fake_bluesky
        return (
            "feed-tweeter demo: everything on 127.0.0.1, nothing leaves this machine. "
            "Ctrl-C stops it.\n"
            f"  blog           {self.blog.url}  ({INITIAL_ARTICLES} articles; a new one every "
            f"{self.publish_every:g} s)\n"
            f"  fake X         {x.base_url}/2/tweets  (checks OAuth signatures like X)\n"
            f"  fake Mastodon  {md.base_url}/api/v1/statuses  (checks the token; "
            f"{md.max_characters} characters)\n"
            f"  fake Bluesky   {bs.base_url}/xrpc  (app-password login as {bs.handle})\n"
            f"  bot            python -m bot run  (polls every {self.poll_interval:g} s; "
            f"database in {workdir})\n"
            "                 set by environment variables, as yours would be: FEED_URLS,\n"
            "                 TWITTER_* + TWITTER_API_BASE_URL, MASTODON_BASE_URL + "
            "MASTODON_ACCESS_TOKEN,\n"
            "                 BLUESKY_HANDLE + BLUESKY_APP_PASSWORD + BLUESKY_SERVICE_URL,\n"
            f"                 TWEET_TEMPLATE='{TEMPLATE}', BACKFILL=1\n")

    async def run(self, seconds: float | None) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        if self.holds_terminal:
            loop.add_signal_handler(signal.SIGTSTP, self._on_suspend)
        workdir = tempfile.TemporaryDirectory(prefix="feed-tweeter-demo-")
        await self.blog_server.start()
        await self.fake_x.start()
        await self.fake_mastodon.start()
        await self.fake_bluesky.start()
        self.blog = self.blog_server.add_blog("/feed.xml", title="Demo blog")
        self.blog_server.set_handler("/feed.xml", self._serve_feed)
        for n in range(1, INITIAL_ARTICLES + 1):
            self._publish_one(n)
        print(self._banner(workdir.name), flush=True)
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
                     asyncio.create_task(self._watch_posts())]
            exited = asyncio.create_task(self.proc.wait())
            stopped = asyncio.create_task(self.stop.wait())
            done, _ = await asyncio.wait({exited, stopped}, timeout=seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:  # --seconds: time is up
                tasks[0].cancel()  # the blog stops publishing
                await self._settle(exited)
            stopped.cancel()
            if exited.done():
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
            await asyncio.sleep(0.2)  # let the watcher print the last posts
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.proc is not None and self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
            self._show_new_posts()  # any that landed since the watcher last looked
            await self.fake_bluesky.close()
            await self.fake_mastodon.close()
            await self.fake_x.close()
            await self.blog_server.close()
            workdir.cleanup()
        print(f"{_now()}  done: {len(self.blog.articles)} articles on the blog, "
              f"{len(self.fake_x.ledger)} tweeted. On each network:", flush=True)
        for line in self.summary():
            print(f"          {line}", flush=True)
        if self.baseline is not None and self.baseline > 1:
            print(f"          (articles {spans(range(1, self.baseline))} were on the blog "
                  "before the bot's first poll: recorded, not announced)", flush=True)
        unpolled = range(self.served[-1] + 1 if self.served else 1, len(self.blog.articles) + 1)
        if unpolled:
            print(f"          (article{'s' if len(unpolled) > 1 else ''} {spans(unpolled)} "
                  "came after the bot's last poll)", flush=True)
        return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=DESCRIPTION,
                                     epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=None, metavar="N",
                        help="stop by itself after N seconds, once the bot has announced the "
                             "last article everywhere (default: run until Ctrl-C)")
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
