"""The service's wiring and its per-feed schedule, from start-up to a graceful shutdown.

:meth:`Worker.start` opens the database, syncs FEED_URLS, and builds the HTTP session, the
sources, the dispatcher and the :class:`~bot.poll.Poller`. Each feed then has its own
next-poll time, one timer in the event loop's heap: every poll is its own task
(:mod:`bot.poll`), so a slow or failing feed never holds up another, and feeds changed from
the command line (added, paused, removed) are picked up within 30 seconds.
:meth:`Worker.close` stops polling, gives posts in flight their grace period, and closes
everything, each step even if one before it failed.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import aiohttp

from bot.config import DRY_RUN_DATABASE, Settings
from bot.delivery import OutcomeKind
from bot.destinations import Destination
from bot.dispatch import Dispatcher, Poster
from bot.errors import ConfigError
from bot.feeds import Fetcher
from bot.feedstate import Schedule, after_crash
from bot.gate import GateReason
from bot.health import Snapshot, healthz, take
from bot.invocation import command
from bot.metrics import Metrics
from bot.networks import mastodon_rule, rule_for
from bot.poll import Outlet, Poller, PollReport
from bot.sources import BlogDatabaseSource, HttpSource
from bot.store import FeedRow, Store, is_write_failure
from bot.twitter import DryRunClient, XClient

log = logging.getLogger(__name__)

FEED_REFRESH_INTERVAL = 30.0  # pick up `bot feeds add/pause/...` made while running
LIMITS_TIMEOUT = 5.0  # how long start-up waits for the Mastodon instances' limits


class Worker:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 poster: Poster | None = None, executor: Executor | None = None,
                 posters: Mapping[str, Poster] | None = None) -> None:
        """``poster`` stands in for the first destination's client (tests, the benchmarks);
        ``posters`` for any destination's, by name."""
        self.settings = settings
        self.schedule = Schedule(settings.poll_interval, settings.max_backoff)
        self.clock = clock
        self.metrics = Metrics()
        self._posters = dict(posters or {})
        if poster is not None:
            first = settings.outlets[0].name if settings.outlets else "x"
            self._posters.setdefault(first, poster)
        self._executor = executor
        self._own_executor: ProcessPoolExecutor | None = None
        self.store: Store | None = None
        self.dispatcher: Dispatcher | None = None  # the first destination's
        self.dispatchers: dict[str, Dispatcher] = {}  # every destination's, by name
        self.outlets: dict[str, Outlet] = {}  # what the poller composes for
        self._checking: asyncio.Task[None] | None = None  # the start-up credentials check
        self.poller: Poller | None = None
        self.session: aiohttp.ClientSession | None = None
        self.fetcher: Fetcher | None = None
        self.feeds: dict[int, FeedRow] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._polling: dict[int, asyncio.Task[PollReport]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._data_version: int | None = None
        self._stop = asyncio.Event()
        self.database_id: str | None = None  # shown by /healthz, compared by `status`
        self.started_at = clock()

    # -- start and stop ------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self.store = await Store.open(s.database_path)
        now = self.clock()
        added, dropped = await self.store.sync_env_feeds(s.feed_urls, now)
        for url in added:
            log.info("feed_added url=%s first_poll=baseline backfill=%d", url, s.backfill)
        for url in dropped:
            log.info("feed_dropped url=%s reason=not_in_FEED_URLS history=kept", url)
        self.database_id = await self.store.get_meta("database_id")
        await self._load_feeds()
        if not self.feeds:
            raise ConfigError(
                "no feed to watch: set FEED_URLS "
                "(e.g. FEED_URLS=https://blog.example.org/feed.xml) "
                f"or add one with `{command()} feeds add URL`"
            )
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=s.feed_timeout),
            # room for every fetch and every destination's posts at once: a network that
            # holds its connections (slow, timing out) never starves a feed or another network
            connector=aiohttp.TCPConnector(
                limit=s.max_concurrent_fetches
                + s.max_concurrent_posts * max(1, len(s.outlets)) + 8),
        )
        self.fetcher = Fetcher(self.session, timeout=s.feed_timeout, max_bytes=s.max_feed_bytes,
                               max_concurrent=s.max_concurrent_fetches,
                               max_per_host=s.max_fetches_per_host)
        if self._executor is None and s.parse_processes > 0:
            # Parse (and compose) in other processes: a large feed never holds the GIL the
            # event loop needs, and two cores parse twice as much.
            import multiprocessing

            self._own_executor = ProcessPoolExecutor(
                s.parse_processes, mp_context=multiprocessing.get_context("forkserver"))
            self._executor = self._own_executor
        self._http = HttpSource(self.fetcher, self._executor)
        self._blog_database = BlogDatabaseSource(query_timeout=s.feed_timeout)
        # no destination: only without the settings' check (tests); X's client finds out
        outlets = s.outlets or (Destination("x", "x"),)
        clients = {d.name: self._posters.get(d.name) or self._make_poster(d) for d in outlets}
        self.outlets = {d.name: Outlet(d.name, rule_for(d.network)) for d in outlets}
        for d in outlets:
            x = d.network == "x"
            self.dispatchers[d.name] = Dispatcher(
                self.store, clients[d.name], max_concurrent=s.max_concurrent_posts,
                max_post_age=s.max_post_age, max_per_day=s.max_posts_per_day,
                max_spend_per_month=s.x_max_spend_per_month if x else None,
                cost_per_post=s.x_cost_per_post if x else 0.0,
                auth_retry_interval=s.auth_retry_interval, clock=self.clock,
                metrics=self.metrics, destination=d.name,
            )
        for dispatcher in self.dispatchers.values():
            await dispatcher.start()
        self.dispatcher = next(iter(self.dispatchers.values()), None)
        # posts owed from before are on their way; new ones are composed for the limits
        await self._learn_limits(clients)
        if not s.dry_run:  # credentials refused are said now, not at the first article
            self._checking = asyncio.create_task(self._check_credentials(clients),
                                                 name="check-credentials")
        self.poller = Poller(s, self.store, self._http, self._blog_database,
                             metrics=self.metrics, clock=self.clock, wake=self.wake_dispatchers,
                             executor=self._executor, outlets=self.outlets)
        if not s.dry_run and (handled := await self.store.dry_run_posts()):
            log.warning("dry_run_history posts=%d database=%s: a dry run recorded these articles "
                        "as handled without posting them, so this run will not tweet them. "
                        "(A dry run keeps its own database, %s, unless DATABASE_PATH is set; "
                        "point DATABASE_PATH at a new file to start afresh.)", handled,
                        s.database_path, DRY_RUN_DATABASE)
        # What start-up built (modules, settings, the feed rows, the sessions) lives as long
        # as the process: move it out of the collector's way, so that a full collection walks
        # only what came later (with 10,000 feeds, full collections were ~5% of a poll's CPU).
        gc.freeze()
        log.info("worker_started feeds=%d dry_run=%s poll_interval=%gs database=%s",
                 len(self.feeds), s.dry_run, s.poll_interval, s.database_path)

    def _make_poster(self, d: Destination) -> Poster:
        s = self.settings
        if s.dry_run:
            return DryRunClient(d.name)
        assert self.session is not None
        common: dict[str, Any] = {"session": self.session, "timeout": s.post_timeout,
                                  "clock": self.clock}
        if d.network == "mastodon":
            from bot.mastodon import MastodonClient

            return MastodonClient(base_url=d.base_url, access_token=d.get("MASTODON_ACCESS_TOKEN"),
                                  visibility=d.get("MASTODON_VISIBILITY", "public"),
                                  env_suffix=d.suffix, **common)
        if d.network == "bluesky":
            from bot.bluesky import BlueskyClient

            return BlueskyClient(handle=d.get("BLUESKY_HANDLE"),
                                 app_password=d.get("BLUESKY_APP_PASSWORD"),
                                 service_url=d.base_url, env_suffix=d.suffix, **common)
        return XClient(api_key=d.get("TWITTER_API_KEY"), api_secret=d.get("TWITTER_API_SECRET"),
                       access_token=d.get("TWITTER_ACCESS_TOKEN"),
                       access_token_secret=d.get("TWITTER_ACCESS_TOKEN_SECRET"),
                       base_url=d.base_url, **common)

    async def _learn_limits(self, clients: Mapping[str, Poster]) -> None:
        """Each Mastodon instance's length limit (``/api/v2/instance``), asked of all at
        once for at most LIMITS_TIMEOUT seconds before the first poll (the dispatchers are
        already sending what was owed). An instance that does not answer delays the first
        poll by that much, once; its posts are then composed for Mastodon's default 500."""
        asking: dict[str, Any] = {}
        for d in self.settings.outlets:
            if d.network != "mastodon":
                continue
            client = clients[d.name]
            if not hasattr(client, "limits") and self.session is not None and d.base_url:
                # a dry run's client posts nothing, but its texts must fit the same limit
                from bot.mastodon import MastodonClient

                client = MastodonClient(base_url=d.base_url,
                                        access_token=d.get("MASTODON_ACCESS_TOKEN"),
                                        session=self.session, timeout=LIMITS_TIMEOUT)
            if hasattr(client, "limits"):
                asking[d.name] = client
        if not asking:
            return
        tasks = {name: asyncio.ensure_future(client.limits())  # type: ignore[attr-defined]
                 for name, client in asking.items()}
        done, pending = await asyncio.wait(tasks.values(), timeout=LIMITS_TIMEOUT)
        for task in pending:
            task.cancel()
        for name, task in tasks.items():
            if task not in done or task.exception() is not None:
                log.warning("mastodon_limits_unknown destination=%s: no answer within %gs; "
                            "composing for %d characters", name, LIMITS_TIMEOUT,
                            self.outlets[name].rule.limit)
                continue
            most, per_url, problem = task.result()
            self.outlets[name] = Outlet(name, mastodon_rule(most, per_url))
            if problem:
                log.warning("mastodon_limits_unknown destination=%s: %s; composing for %d "
                            "characters", name, problem, most)
            else:
                log.info("mastodon_limits destination=%s max_characters=%d url_characters=%d",
                         name, most, per_url)

    async def _check_credentials(self, clients: Mapping[str, Poster]) -> None:
        """Ask each network that can tell (Mastodon, Bluesky) whether it takes the
        credentials; one that refuses them stops its destination's posting at once, with
        the same ERROR and /healthz 503 as a refused post, and is probed as usual."""
        names = [name for name, client in clients.items() if hasattr(client, "check")]

        async def one(name: str) -> None:
            outcome = await clients[name].check()  # type: ignore[attr-defined]
            dispatcher = self.dispatchers[name]
            if outcome is not None and outcome.kind is OutcomeKind.AUTH:
                log.warning("credentials_refused destination=%s at=start-up reason=%r", name,
                            outcome.reason)
                await dispatcher.gatekeeper.stop(
                    GateReason.AUTH, dispatcher.broken_help.get(OutcomeKind.AUTH,
                                                                outcome.reason),
                    dispatcher.auth_retry_interval)

        results = await asyncio.gather(*(one(n) for n in names), return_exceptions=True)
        for name, result in zip(names, results, strict=True):
            if isinstance(result, Exception):
                log.error("credentials_check_failed destination=%s", name, exc_info=result)

    async def _close_clients(self) -> None:
        """Clients with connections of their own (Bluesky's SDK has an httpx pool)."""
        for dispatcher in self.dispatchers.values():
            aclose = getattr(dispatcher.client, "aclose", None)
            if aclose is not None:
                await aclose()

    def wake_dispatchers(self) -> None:
        """New posts are waiting: every destination's dispatcher looks."""
        for dispatcher in self.dispatchers.values():
            dispatcher.wake()

    def stop(self) -> None:
        if not self._stop.is_set():
            log.info("shutdown_requested")
        self._stop.set()

    async def close(self) -> None:
        """Stop polling, give posts in flight the grace period, close everything."""
        polls = list(self._polling.values())
        if polls:
            _, still = await asyncio.wait(polls, timeout=2.0)
            for task in still:
                task.cancel()
            await asyncio.gather(*polls, return_exceptions=True)
        if self._checking is not None:
            self._checking.cancel()
            await asyncio.gather(self._checking, return_exceptions=True)
        # each step runs even if one before it failed: never leave the database open
        grace = self.settings.shutdown_grace
        steps: list[tuple[str, Callable[[], Awaitable[None]] | None]] = [
            ("dispatchers", functools.partial(self._close_dispatchers, grace)
             if self.dispatchers else None),
            ("clients", self._close_clients),
            ("http_session", self.session.close if self.session else None),
            ("database", self.store.close if self.store else None),
        ]
        for name, step in steps:
            if step is None:
                continue
            try:
                await step()
            except Exception:
                log.exception("shutdown_step_failed step=%s", name)
        if self._own_executor is not None:
            self._own_executor.shutdown(wait=True, cancel_futures=True)
        log.info("worker_stopped")

    # -- scheduling ----------------------------------------------------------------------

    async def _load_feeds(self) -> None:
        """Read the pollable feeds, unless nothing but this process wrote since last time
        (``PRAGMA data_version``): its own writes are in :attr:`feeds` already."""
        assert self.store is not None
        version = await self.store.data_version()
        if version == self._data_version:
            return
        rows = await self.store.feeds(pollable_only=True)
        self._data_version = version
        fresh = {f.id: f for f in rows}
        if not self.feeds:  # at start: POLL_INTERVAL may have changed since the last run
            self._within_interval(rows)
        for fid, feed in fresh.items():
            known = self.feeds.get(fid)
            if fid in self._polling:
                # its poll writes a newer state; read the row again once the poll is done
                self._data_version = None
                continue
            self.feeds[fid] = feed
            if known is None or known.next_poll_at != feed.next_poll_at:
                self._schedule(fid)
        for fid in list(self.feeds):
            if fid not in fresh:  # paused, removed or gone: even while a poll of it runs
                del self.feeds[fid]
                self._unschedule(fid)

    def _within_interval(self, rows: list[FeedRow]) -> None:
        """A restart with a shorter POLL_INTERVAL takes effect at once: a healthy feed is
        polled within one interval, whatever its stored next poll said."""
        latest = self.clock() + self.settings.poll_interval
        for feed in rows:
            if not feed.consecutive_failures and feed.next_poll_at > latest:
                feed.next_poll_at = latest

    def _schedule(self, fid: int) -> None:
        """Start feed ``fid``'s next poll at its ``next_poll_at``: one timer per feed, in
        the event loop's own timer heap (no scheduler task to wake up for every poll)."""
        self._unschedule(fid)
        if self._loop is None or self._stop.is_set():
            return
        delay = max(0.0, self.feeds[fid].next_poll_at - self.clock())
        self._timers[fid] = self._loop.call_later(delay, self._start_poll, fid)

    def _unschedule(self, fid: int) -> None:
        timer = self._timers.pop(fid, None)
        if timer is not None:
            timer.cancel()

    async def run(self) -> None:
        """Poll every feed on its own schedule until :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        for fid in self.feeds:
            self._schedule(fid)
        lag = asyncio.create_task(self._watch_loop_lag(), name="loop-lag")
        try:
            while not self._stop.is_set():
                try:
                    async with asyncio.timeout(FEED_REFRESH_INTERVAL):
                        await self._stop.wait()
                except TimeoutError:
                    await self._load_feeds()
        finally:
            for fid in list(self._timers):
                self._unschedule(fid)
            lag.cancel()
            await asyncio.gather(lag, return_exceptions=True)

    def _start_poll(self, fid: int) -> None:
        self._timers.pop(fid, None)
        feed = self.feeds.get(fid)
        if feed is None or fid in self._polling or self._stop.is_set():
            return  # removed, already running, or stopping
        assert self.poller is not None
        task = asyncio.create_task(self.poller.poll(feed))
        self._polling[fid] = task
        task.add_done_callback(functools.partial(self._poll_done, fid))

    def _poll_done(self, fid: int, task: asyncio.Task[PollReport]) -> None:
        self._polling.pop(fid, None)
        feed = self.feeds.get(fid)  # None: paused or removed meanwhile, no longer polled
        if not task.cancelled() and (exc := task.exception()) is not None:
            # poll() records its own failures; this is one it could not write down (the
            # disk). The feed stays on the schedule, failing and backing off, in memory.
            if not is_write_failure(exc):
                log.error("poll_crashed feed_id=%d", fid, exc_info=exc)
            if feed is not None:
                after_crash(feed, self.schedule, now=self.clock(),
                            error=f"internal error: {type(exc).__name__}: {exc}").apply(feed)
        if feed is not None and not feed.gone:
            self._schedule(fid)

    async def run_once(self, drain_timeout: float | None = 60.0) -> list[PollReport]:
        """Poll every feed once, then wait for the posts that are due (tests, `--once`)."""
        reports = await asyncio.gather(*(self.poll(f) for f in list(self.feeds.values())))
        await asyncio.gather(*(d.drain(drain_timeout) for d in self.dispatchers.values()))
        return list(reports)

    async def _close_dispatchers(self, grace: float) -> None:
        """Every destination's at once: the grace period is shared, not added up."""
        results = await asyncio.gather(*(d.close(grace) for d in self.dispatchers.values()),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _watch_loop_lag(self, every: float = 0.25) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(every)
            lag = max(0.0, loop.time() - start - every)
            self.metrics.loop_lag.observe(lag)
            self.metrics.loop_lag_last.set(lag)

    # -- one poll ------------------------------------------------------------------------

    async def poll(self, feed: FeedRow) -> PollReport:
        assert self.poller is not None
        return await self.poller.poll(feed)

    # -- health ---------------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """The service's health now: behind /healthz and /metrics (bot.health)."""
        assert self.store is not None and self.dispatcher is not None
        return await take(self.store, destinations={
            name: d.health() for name, d in self.dispatchers.items()},
            database_id=self.database_id, now=self.clock(),
            x_cost_per_post=self.settings.x_cost_per_post)

    async def health(self) -> tuple[int, dict[str, object]]:
        snapshot = await self.snapshot()
        return snapshot.http_status, healthz(snapshot, dry_run=self.settings.dry_run)
