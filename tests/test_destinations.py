"""Several destinations at once (issue 15), the real service against three loopback networks:
X, Mastodon and Bluesky, each a fake that records what it was sent.

- a destination that is down (connection refused, every answer slower than POST_TIMEOUT, 5xx)
  or refuses the credentials (401) holds up neither of the others: they get new articles
  within a couple of seconds of the poll; its own posts wait, pending, never failed or lost;
  /healthz says so; and once it is back they go out, each once;
- ``feeds add URL --to x,mastodon`` (feeds.destinations) sends that feed's articles there only;
- MAX_POSTS_PER_DAY is counted per destination: a destination that used it up waits, alone;
- a named account (``MASTODON_BASE_URL__NEWS`` ...) is a destination of its own,
  ``mastodon:news``, with its own posts.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.store import Store
from tests.conftest import SECRETS, BotProcess, bot_env, fake_x_for_credentials, sqlite_rows
from tests.fakes import fake_bluesky, fake_mastodon, fake_x
from tests.fakes.fake_bluesky import FakePDS
from tests.fakes.fake_mastodon import FakeMastodon
from tests.fakes.fake_x import FakeX
from tests.fakes.feed_server import FeedServer
from tests.fleet import (
    BLUESKY_APP_PASSWORD,
    BLUESKY_HANDLE,
    MASTODON_TOKEN,
    NETWORKS,
    bluesky_env,
    bot_process,
    mastodon_env,
    title_of,
    x_env,
)

POLL_INTERVAL = 0.5
POST_TIMEOUT = 5.0  # what a broken destination costs each of its posts, at most, per attempt
PROMPT = 2.0  # "promptly": seconds from the poll that found an article to its post elsewhere
RECOVERY = 30.0  # a destination that is back gets its posts within this (its backoff)

Fake = FakeX | FakeMastodon | FakePDS


@dataclass
class Network:
    """One network's fake, in this process, and what the bot is told about it."""

    name: str
    fake: Fake

    def texts(self) -> list[str]:
        return self.fake.texts()

    def titles(self) -> collections.Counter[str]:
        return collections.Counter(title_of(t) for t in self.texts())

    def arrivals(self) -> dict[str, float]:
        """When each article arrived (its first post), by title."""
        if isinstance(self.fake, FakeX):
            posted = [(t.text, t.at) for t in self.fake.ledger]
        elif isinstance(self.fake, FakeMastodon):
            posted = [(s.text, s.at) for s in self.fake.statuses]
        else:
            posted = [(r.text, r.at) for r in self.fake.records
                      if r.collection == fake_bluesky.POST_COLLECTION]
        found: dict[str, float] = {}
        for text, at in posted:
            found.setdefault(title_of(text), at)
        return found

    def env(self, suffix: str = "") -> dict[str, str]:
        return {"x": x_env, "mastodon": mastodon_env, "bluesky": bluesky_env}[self.name](
            self.fake.base_url, suffix)


def new_fake(name: str) -> Fake:
    if name == "x":
        return fake_x_for_credentials()
    if name == "mastodon":
        return FakeMastodon(token=MASTODON_TOKEN)
    return FakePDS(handle=BLUESKY_HANDLE, app_password=BLUESKY_APP_PASSWORD)


@pytest.fixture
async def networks() -> AsyncIterator[dict[str, Network]]:
    found = {name: Network(name, new_fake(name)) for name in NETWORKS}
    for network in found.values():
        await network.fake.start()
    yield found
    for network in found.values():
        await network.fake.close()


def three_env(db: Path, feeds: list[str], networks: dict[str, Network], **extra: object
              ) -> dict[str, str]:
    env = bot_env(db, feeds, None, POLL_INTERVAL=POLL_INTERVAL, POST_TIMEOUT=POST_TIMEOUT,
                  AUTH_RETRY_INTERVAL=1, SHUTDOWN_GRACE=1, **extra)
    for network in networks.values():
        env.update(network.env())
    return env


def post_states(db: Path) -> dict[str, collections.Counter[str]]:
    found: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for destination, state in sqlite_rows(db, "SELECT destination, state FROM posts"):
        found[str(destination)][str(state)] += 1
    return dict(found)


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` until it holds; returns when (time.time()); fails naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.02)
    return time.time()


# -- one destination broken ----------------------------------------------------------------

class Breakage:
    """How a destination is broken, and how it comes back."""

    def __init__(self, mode: str, network: Network) -> None:
        self.mode = mode
        self.network = network
        self.port = 0

    async def start(self) -> None:
        fake = self.network.fake
        if self.mode == "refused":  # nothing listens where the bot is told to post
            self.port = int(fake.base_url.rsplit(":", 1)[1])
            await fake.close()
        elif self.mode == "slow":  # every answer comes long after POST_TIMEOUT
            fake.delay = 10 * POST_TIMEOUT
        elif self.mode == "5xx":
            fault = {"x": fake_x.Fault.server_error_html(503),
                     "mastodon": fake_mastodon.Fault.server_error_html(502),
                     "bluesky": fake_bluesky.Fault.server_error(500)}[self.network.name]
            fake.faults.extend([fault] * 1000)  # type: ignore[list-item]
        elif self.mode == "401":
            fake.reject_credentials(True)

    async def end(self) -> None:
        fake = self.network.fake
        if self.mode == "refused":
            await fake.start(port=self.port)
        elif self.mode == "slow":
            fake.delay = 0.0
        elif self.mode == "5xx":
            fake.faults.clear()
        elif self.mode == "401":
            fake.reject_credentials(False)


@pytest.mark.parametrize("mode", ["refused", "slow", "5xx", "401"])
@pytest.mark.parametrize("broken", NETWORKS)
async def test_a_broken_destination_holds_up_none_of_the_others_and_catches_up_once_back(
    broken: str, mode: str, tmp_path: Path, feed_server: FeedServer,
    networks: dict[str, Network], bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    blog = feed_server.add_blog("/feed.xml", "Blog")
    blog.publish("Old news")
    healthy = [n for n in networks.values() if n.name != broken]
    breakage = Breakage(mode, networks[broken])
    await breakage.start()
    bot = await bot_process(three_env(db, [blog.url], networks), tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined")

    # two waves: the second comes while the broken one is in its timeouts and backoff
    published = []
    for wave, count in enumerate((2, 1), 1):
        published += [blog.publish(f"Wave {wave} article {i}") for i in range(count)]
        match = await bot.wait_for(r"feed_polled .* new=[1-9]", count=wave)
        polled = time.time()
        wanted = {a.title for a in published}
        for network in healthy:
            await wait_until(lambda n=network, w=wanted: w <= set(n.titles()),  # type: ignore[misc]
                             PROMPT + 3, f"{network.name} got {wanted}")
            late = {t: round(at - polled, 2) for t, at in network.arrivals().items()
                    if t.startswith(f"Wave {wave} ") and at - polled > PROMPT}
            assert not late, (f"{network.name} got wave {wave} only seconds after the poll "
                              f"({match.group(0)}): {late}; {broken} is {mode}")
        await asyncio.sleep(1.0)

    # the broken one: nothing posted, its posts waiting (not failed, not lost), /healthz says
    if mode != "401":  # (a slow answer is given up on only at POST_TIMEOUT)
        where = r"(?!.*destination=)" if broken == "x" else rf".*destination={broken}\b"
        await bot.wait_for(rf"post_retry {where}", timeout=POST_TIMEOUT + 5)
    assert networks[broken].texts() == []
    states = post_states(db)
    assert set(states[broken]) <= {"pending", "sending"}, states
    assert sum(states[broken].values()) == len(published), states
    for network in healthy:
        assert states[network.name] == {"sent": len(published)}, states
    status, health = await bot.healthz()
    view: dict[str, Any] = health["destinations"][broken]  # type: ignore[index]
    assert view["configured"] is True
    assert view["posts"]["failed"] == 0, view
    assert view["posts"]["pending"] + view["posts"]["sending"] == len(published), view
    for network in healthy:
        other: dict[str, Any] = health["destinations"][network.name]  # type: ignore[index]
        assert other["posting_broken"] is False and other["gate"]["open"] is True, other
        assert other["posts"]["sent"] == len(published), other
    if mode == "401":
        assert status == 503 and health["status"] == "posting_broken", health
        assert view["posting_broken"] is True, view
        assert view["gate"]["reason"] == "auth", view
    else:  # a network that is down: nothing for the operator to fix, but it shows
        assert status == 200 and view["posting_broken"] is False, view
        assert view["consecutive_failures"] >= 1, view
        said = {"refused": "connection error", "slow": "no answer", "5xx": "HTTP 50"}[mode]
        assert said in view["last_error"], view

    # back: its posts go out, each once; the others get nothing more
    await breakage.end()
    wanted = {a.title for a in published}
    await wait_until(lambda: wanted <= set(networks[broken].titles()), RECOVERY,
                     f"{broken} got {wanted} once back")
    await wait_until(lambda: post_states(db).get(broken) == {"sent": len(published)}, 10,
                     f"{broken}'s posts written down as sent")
    await asyncio.sleep(1.0)  # a few more polls and dispatcher passes
    for network in networks.values():
        assert network.titles() == collections.Counter(wanted), (network.name, network.texts())
    status, health = await bot.healthz()
    assert status == 200 and health["status"] == "ok", health
    view = health["destinations"][broken]  # type: ignore[index]
    assert view["consecutive_failures"] == 0 and view["last_error"] is None, view
    assert view["posting_broken"] is False and view["gate"]["open"] is True, view
    assert await bot.stop() == 0
    for secret in (*SECRETS, MASTODON_TOKEN, BLUESKY_APP_PASSWORD):
        assert secret not in bot.output


# -- which destinations a feed goes to; named accounts -------------------------------------

async def add_feed(db: Path, url: str, destinations: str) -> None:
    """What ``feeds add URL --to ...`` writes (the command line's flag is someone else's)."""
    store = await Store.open(str(db))
    try:
        await store.add_feed(url, time.time(), destinations=destinations)
    finally:
        await store.close()


async def test_a_feed_for_x_and_mastodon_goes_there_only_and_a_named_account_has_its_own(
    tmp_path: Path, feed_server: FeedServer, networks: dict[str, Network],
    bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    everywhere = feed_server.add_blog("/all.xml", "For everyone")
    two = feed_server.add_blog("/two.xml", "For X and Mastodon")
    for blog in (everywhere, two):
        blog.publish(f"Old on {blog.path}")
    await add_feed(db, two.url, "x,mastodon")
    async with FakeMastodon(token="news-token") as news:
        env = three_env(db, [everywhere.url], networks)
        env.update(mastodon_env(news.base_url, "__NEWS", token="news-token"))
        bot = await bot_process(env, tmp_path).start()
        bots.append(bot)
        await bot.wait_for(r"feed_baselined", count=2)

        a = everywhere.publish("For all four accounts")
        b = two.publish("For X and Mastodon only")
        await networks["x"].fake.wait_for_tweets(2, timeout=15)  # type: ignore[union-attr]
        await networks["mastodon"].fake.wait_for_statuses(2, 15)  # type: ignore[union-attr]
        await networks["bluesky"].fake.wait_for_records(1, 15)  # type: ignore[union-attr]
        await news.wait_for_statuses(1, 15)
        await asyncio.sleep(1.5)  # more polls and passes: nothing else may come

        assert networks["x"].titles() == {a.title: 1, b.title: 1}
        assert networks["mastodon"].titles() == {a.title: 1, b.title: 1}
        assert networks["bluesky"].titles() == {a.title: 1}
        assert collections.Counter(title_of(t) for t in news.texts()) == {a.title: 1}
        # the named account posted with its own token, the unnamed one with its own
        assert {s.token for s in news.statuses} == {"news-token"}
        assert {s.token for s in networks["mastodon"].fake.statuses} == {  # type: ignore[union-attr]
            MASTODON_TOKEN}

        rows = sqlite_rows(db, "SELECT e.title, p.destination, p.state, p.tweet_id "
                               "FROM posts p JOIN entries e ON e.id = p.entry_id")
        by_title: dict[str, dict[str, tuple[object, object]]] = collections.defaultdict(dict)
        for title, destination, state, tweet_id in rows:
            by_title[str(title)][str(destination)] = (state, tweet_id)
        assert set(by_title[a.title]) == {"x", "mastodon", "mastodon:news", "bluesky"}
        assert set(by_title[b.title]) == {"x", "mastodon"}
        assert by_title[a.title]["mastodon:news"] == ("sent", news.statuses[0].id)
        status, health = await bot.healthz()
        assert status == 200
        views: dict[str, Any] = health["destinations"]  # type: ignore[assignment]
        assert set(views) == {"x", "mastodon", "mastodon:news", "bluesky"}
        assert views["mastodon:news"]["posts"]["sent"] == 1, views
        assert await bot.stop() == 0
    assert "news-token" not in bot.output


async def test_max_posts_per_day_closes_only_the_gate_of_the_destination_that_used_it_up(
    tmp_path: Path, feed_server: FeedServer, networks: dict[str, Network],
    bots: list[BotProcess]
) -> None:
    db = tmp_path / "bot.sqlite3"
    everywhere = feed_server.add_blog("/all.xml", "For everyone")
    x_only = feed_server.add_blog("/x.xml", "For X")
    for blog in (everywhere, x_only):
        blog.publish(f"Old on {blog.path}")
    await add_feed(db, x_only.url, "x")
    bot = await bot_process(three_env(db, [everywhere.url], networks, MAX_POSTS_PER_DAY=2),
                            tmp_path).start()
    bots.append(bot)
    await bot.wait_for(r"feed_baselined", count=2)

    spent = [x_only.publish(f"X only {i}") for i in range(2)]  # X's two for the day
    await networks["x"].fake.wait_for_tweets(2, timeout=15)  # type: ignore[union-attr]
    later = [everywhere.publish(f"For all {i}") for i in range(2)]
    await bot.wait_for(r"feed_polled .*all\.xml .* new=2")
    polled = time.time()
    for name in ("mastodon", "bluesky"):
        network = networks[name]
        at = await wait_until(lambda n=network: len(n.titles()) == 2,  # type: ignore[misc]
                              PROMPT + 3, f"{name} got both")
        assert at - polled <= PROMPT + 0.5, (name, at - polled)
    await bot.wait_for(r"gate_closed destination=x reason=daily_budget")
    await asyncio.sleep(1.5)

    assert networks["x"].titles() == {a.title: 1 for a in spent}
    for name in ("mastodon", "bluesky"):
        assert networks[name].titles() == {a.title: 1 for a in later}
    states = post_states(db)
    assert states == {"x": {"sent": 2, "pending": 2}, "mastodon": {"sent": 2},
                      "bluesky": {"sent": 2}}, states
    status, health = await bot.healthz()
    views: dict[str, Any] = health["destinations"]  # type: ignore[assignment]
    assert views["x"]["gate"]["open"] is False, views["x"]
    assert views["x"]["gate"]["reason"] == "daily_budget", views["x"]
    assert views["x"]["posting_broken"] is False
    for name in ("mastodon", "bluesky"):
        assert views[name]["gate"]["open"] is True and not views[name]["gate"]["reason"], \
            views[name]
    assert status == 200  # the bot's own budget: nothing is broken
    assert await bot.stop() == 0


async def test_two_feeds_with_one_article_for_different_destinations_post_it_to_each_once(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A category feed goes to X, the main feed to Mastodon, a third to every destination:
    the article they share is posted once on X and once on Mastodon, never lost to the
    "this link was seen" check, never twice."""
    from bot.config import Settings
    from bot.delivery import Delivery, Outcome, OutcomeKind
    from bot.worker import Worker

    class Recorder:
        def __init__(self) -> None:
            self.texts: list[str] = []

        async def send(self, delivery: Delivery) -> Outcome:
            self.texts.append(delivery.text)
            return Outcome(OutcomeKind.SENT, tweet_id=str(len(self.texts)))

    blogs = {name: feed_server.add_blog(f"/{name}.xml", f"Blog {name}") for name in "abc"}
    for blog in blogs.values():
        blog.publish("Old one")
    db = tmp_path / "bot.sqlite3"
    store = await Store.open(str(db))
    for name, to in (("a", "x"), ("b", "mastodon"), ("c", None)):
        await store.add_feed(blogs[name].url, time.time(), destinations=to)
    await store.close()
    env = {"DATABASE_PATH": str(db), "HTTP_PORT": "0", "TWITTER_API_KEY": "k",
           "TWITTER_API_SECRET": "s", "TWITTER_ACCESS_TOKEN": "t",
           "TWITTER_ACCESS_TOKEN_SECRET": "ts", "MASTODON_BASE_URL": "https://m.example",
           "MASTODON_ACCESS_TOKEN": "tok"}
    x, mastodon = Recorder(), Recorder()
    worker = Worker(Settings.from_env(env, require_feeds=False),
                    posters={"x": x, "mastodon": mastodon})
    await worker.start()
    try:
        await worker.run_once(10)  # the first polls record what is there
        link = "https://blog.example.org/shared-article"
        for blog in blogs.values():  # one article, in all three feeds
            blog.publish("Shared article", link=link, guid=f"{blog.url}#shared")
        for feed in sorted(worker.feeds.values(), key=lambda f: f.url):
            await worker.poll(feed)  # a (x), then b (mastodon), then c (both)
        for d in worker.dispatchers.values():
            await d.drain(10)
    finally:
        await worker.close()
    assert x.texts == [f"Shared article {link}"]
    assert mastodon.texts == [f"Shared article {link}"]
    rows = sqlite_rows(db, "SELECT p.destination, p.state FROM posts p JOIN entries e "
                           f"ON e.id = p.entry_id WHERE e.link = '{link}' ORDER BY 1")
    assert rows == [("mastodon", "sent"), ("x", "sent")]


@pytest.mark.parametrize("network", ["mastodon", "bluesky"])
async def test_credentials_a_network_refuses_are_said_at_start_up_not_at_the_first_article(
    tmp_path: Path, feed_server: FeedServer, network: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from bot.config import Settings
    from bot.gate import GateReason
    from bot.health import healthz
    from bot.worker import Worker

    blog = feed_server.add_blog("/feed.xml", "Quiet blog")
    blog.publish("Old one")
    async with FakeMastodon(token="right-token") as mastodon, \
            FakePDS(handle="blog.test", app_password="abcd-efgh-ijkl-mnop") as pds:
        env = {"DATABASE_PATH": str(tmp_path / "bot.sqlite3"), "HTTP_PORT": "0",
               "FEED_URLS": blog.url,
               "MASTODON_BASE_URL": mastodon.base_url, "MASTODON_ACCESS_TOKEN": "right-token",
               "BLUESKY_HANDLE": "blog.test", "BLUESKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop",
               "BLUESKY_SERVICE_URL": pds.base_url}
        wrong = {"mastodon": {"MASTODON_ACCESS_TOKEN": "wrong-token"},
                 "bluesky": {"BLUESKY_APP_PASSWORD": "wxyz-wxyz-wxyz-wxyz"}}[network]
        caplog.set_level(logging.INFO, logger="bot")
        worker = Worker(Settings.from_env({**env, **wrong}))
        await worker.start()
        try:
            broken = worker.dispatchers[network]
            other = worker.dispatchers["bluesky" if network == "mastodon" else "mastodon"]
            deadline = time.monotonic() + 5
            while broken.gate.reason is not GateReason.AUTH:
                assert time.monotonic() < deadline, "refused credentials not said at start"
                await asyncio.sleep(0.05)
            assert other.gate.reason is GateReason.NONE  # the other one is fine
            snapshot = await worker.snapshot()
            body = healthz(snapshot, dry_run=False)
            assert snapshot.http_status == 503 and body["posting_broken"] == [network]
        finally:
            await worker.close()
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"posting_stopped destination={network} reason=auth") for m in said)
    assert not any(secret in m for m in said
                   for secret in ("wrong-token", "wxyz-wxyz-wxyz-wxyz", "right-token"))
