"""The crash test: the real service, SIGKILLed at random moments while X fails a share of
the calls; in the end every article is on X exactly once.

Each round publishes a wave of articles, lets the service run for a random short time (or,
every other round on average, until X is handling a post), kills it with SIGKILL (no
clean-up of any kind) and starts it again. X answers slowly and fails about 30 % of the calls
(503 with an HTML body, the connection cut before or after the tweet is recorded, 429). At
the end X behaves, the service drains, and the fake X's ledger is checked link by link.

The second test does the same with three destinations, X, Mastodon and Bluesky, each a fake in
a process of its own failing in its own way, slow answers included; every network's ledger and
every destination's posts are checked (see the comment above it).

Set CRASH_SEED to replay a run's random choices (the timing of a real process cannot be).
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time
from pathlib import Path

import pytest

from tests.conftest import BotProcess, bot_env, fake_x_for_credentials, sqlite_rows
from tests.fakes.feed_server import Article, FeedServer
from tests.fleet import NETWORKS, StandaloneFake, bot_process, title_of

ROUNDS = 8
DRAIN_TIMEOUT = 60.0


async def test_every_article_is_tweeted_exactly_once_through_kills_and_faults(
    tmp_path: Path, feed_server: FeedServer, bots: list[BotProcess],
    capsys: pytest.CaptureFixture[str]
) -> None:
    seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    began = time.monotonic()
    fake = fake_x_for_credentials(fail_ratio=0.3, rng=random.Random(seed + 1), delay=0.4)
    await fake.start()
    try:
        db = tmp_path / "bot.sqlite3"
        blog = feed_server.add_blog("/feed.xml", "Crash blog")
        blog.max_items = 500  # a wave the bot never saw before a kill must still be in the feed
        blog.publish("Already there before the bot")
        env = bot_env(db, [blog.url], fake, POLL_INTERVAL="0.5", BACKFILL=0,
                      MAX_CONCURRENT_POSTS=4, SHUTDOWN_GRACE=2)

        bot = await BotProcess(env, tmp_path).start()
        bots.append(bot)
        await bot.wait_for(r"feed_baselined", timeout=30)

        published: list[Article] = []
        kills = kills_in_flight = 0
        for round_no in range(ROUNDS):
            for _ in range(rng.randint(3, 7)):
                published.append(blog.publish(f"Round {round_no} article {len(published) + 1}"))
            if rng.random() < 0.5:
                await asyncio.sleep(rng.uniform(0.3, 3.5))  # any moment at all
            else:  # while X is handling a post: did it go out or not?
                until = time.monotonic() + 5
                while fake.in_flight == 0 and time.monotonic() < until:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(rng.uniform(0, 0.4))
            kills_in_flight += fake.in_flight > 0
            await bot.kill()
            kills += 1
            bot = await BotProcess(env, tmp_path).start()
            bots.append(bot)

        # X behaves again; everything must come out, and only once.
        fake.fail_ratio = 0
        fake.delay = 0
        wanted = {a.link for a in published}

        def tweeted_links() -> collections.Counter[str]:
            return collections.Counter(t.text.split()[-1] for t in fake.ledger)

        def all_settled() -> bool:
            # on X, and written down as sent (an ambiguous attempt that did post is settled
            # by its retry's duplicate 403, possibly after a backoff)
            sent = sqlite_rows(db, "SELECT COUNT(*) FROM posts WHERE state = 'sent'")[0][0]
            return wanted <= set(tweeted_links()) and sent == len(published)

        deadline = time.monotonic() + DRAIN_TIMEOUT
        while not all_settled() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # a few more polls: nothing may come twice
        assert await bot.stop() == 0, bot.output[-3000:]

        counts = tweeted_links()
        missing = sorted(wanted - set(counts))
        duplicated = sorted(link for link, n in counts.items() if n > 1)
        strays = sorted(set(counts) - wanted)
        faults = sum(1 for r in fake.requests if r.fault is not None)
        settled_by_403 = sum(1 for r in fake.requests if r.status == 403)
        states = {str(state): n for state, n in
                  sqlite_rows(db, "SELECT state, COUNT(*) FROM posts GROUP BY state")}
        # A post whose tweet id we stored (X's 201 reached the bot and was written down) is
        # never sent again: its later requests would be retries of a confirmed post.
        confirmed = {tid for (tid,) in sqlite_rows(
            db, "SELECT tweet_id FROM posts WHERE tweet_id IS NOT NULL")}
        resent = [r for t in fake.ledger if t.id in confirmed
                  for r in fake.requests if r.text == t.text and r.time > t.at]
        with capsys.disabled():
            print(f"\ncrash test: seed={seed} articles={len(published)} kills={kills} "
                  f"kills_in_flight={kills_in_flight} missing={len(missing)} "
                  f"duplicated={len(duplicated)} requests={len(fake.requests)} "
                  f"faults={faults} settled_by_403={settled_by_403} posts={states} "
                  f"elapsed={time.monotonic() - began:.1f}s")
        assert not missing, f"never tweeted (seed {seed}): {missing}"
        assert not duplicated, f"tweeted twice (seed {seed}): {duplicated}"
        assert not strays, strays
        assert not resent, f"confirmed posts sent again (seed {seed}): {resent}"
        assert states == {"sent": len(published)}, states
        assert kills == ROUNDS
    finally:
        await fake.close()


# -- three destinations at once ------------------------------------------------------------
#
# The same, with X, Mastodon and Bluesky configured, each a fake in a process of its own (as
# the demo runs them) failing about 30 % of the posts in its own way: a 5xx, the connection
# cut before the post is made, cut after it is made (the network has it, the answer is lost),
# a 429; and now and then a "slow" answer that outlasts POST_TIMEOUT, so the bot gives up while
# the network goes on and makes the post. Every network settles an ambiguous attempt its own
# way: X by the duplicate-content 403, Mastodon by replaying the Idempotency-Key, Bluesky by
# getRecord under the record key committed before the first attempt.

POST_TIMEOUT = 3.0
SLOW = POST_TIMEOUT + 1.5  # a slow answer comes after the bot stopped waiting for it
# The oldest posts are the ones in flight at most kills, and a kill counts as an attempt: after
# a few, one more failure backs a post off for 30 to 80 seconds (usually the drain takes 2-20).
DRAIN_TIMEOUT_ALL = 100.0


@pytest.mark.timeout(200)
async def test_every_article_reaches_every_destination_exactly_once_through_kills_and_faults(
    tmp_path: Path, feed_server: FeedServer, bots: list[BotProcess],
    capsys: pytest.CaptureFixture[str]
) -> None:
    seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    began = time.monotonic()
    fakes = {name: StandaloneFake(name, tmp_path, delay=0.3, fail_ratio=0.3, seed=seed + i)
             for i, name in enumerate(NETWORKS, 1)}
    await asyncio.gather(*(fake.start() for fake in fakes.values()))
    try:
        db = tmp_path / "bot.sqlite3"
        blog = feed_server.add_blog("/feed.xml", "Crash blog")
        blog.max_items = 500
        blog.publish("Already there before the bot")
        env = bot_env(db, [blog.url], None, POLL_INTERVAL="0.5", BACKFILL=0,
                      MAX_CONCURRENT_POSTS=4, SHUTDOWN_GRACE=2, POST_TIMEOUT=POST_TIMEOUT)
        for fake in fakes.values():
            env.update(fake.env())

        bot = await bot_process(env, tmp_path).start()
        bots.append(bot)
        await bot.wait_for(r"feed_baselined", timeout=30)

        async def in_flight() -> dict[str, int]:
            counts = await asyncio.gather(*(f.in_flight() for f in fakes.values()))
            return dict(zip(fakes, counts, strict=True))

        published: list[Article] = []
        kills = kills_in_flight = 0
        in_flight_at_kill: collections.Counter[str] = collections.Counter()
        slow_faults: collections.Counter[str] = collections.Counter()
        for round_no in range(ROUNDS):
            for _ in range(rng.randint(3, 7)):
                published.append(blog.publish(f"Round {round_no} article {len(published) + 1}"))
            for name, fake in fakes.items():
                if rng.random() < 0.3:
                    await fake.control(faults=[{"kind": "slow", "seconds": SLOW}])
                    slow_faults[name] += 1
            if rng.random() < 0.4:
                await asyncio.sleep(rng.uniform(0.3, 3.5))
            else:  # while this network is handling a post: did it go out or not?
                target = fakes[rng.choice(NETWORKS)]
                until = time.monotonic() + 6
                while not await target.in_flight() and time.monotonic() < until:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(rng.uniform(0, 0.4))
            busy = {name for name, n in (await in_flight()).items() if n}
            await bot.kill()
            kills += 1
            kills_in_flight += bool(busy)
            in_flight_at_kill.update(busy)
            bot = await bot_process(env, tmp_path).start()
            bots.append(bot)

        # The networks behave again; everything must come out, once on each.
        await asyncio.gather(*(f.control(fail_ratio=0, delay=0, clear_faults=True)
                               for f in fakes.values()))
        wanted = collections.Counter(a.title for a in published)

        async def posted() -> dict[str, collections.Counter[str]]:
            ledgers = await asyncio.gather(*(f.posts() for f in fakes.values()))
            return {name: collections.Counter(title_of(p.text) for p in ledger)
                    for name, ledger in zip(fakes, ledgers, strict=True)}

        def sent_per_destination() -> dict[str, int]:
            return {str(d): int(n) for d, n in sqlite_rows(  # type: ignore[call-overload]
                db, "SELECT destination, COUNT(*) FROM posts WHERE state = 'sent' "
                    "GROUP BY destination")}

        async def all_settled() -> bool:
            titles = await posted()
            sent = sent_per_destination()
            return all(set(wanted) <= set(titles[name]) and sent.get(name) == len(published)
                       for name in fakes)

        draining = time.monotonic()
        deadline = draining + DRAIN_TIMEOUT_ALL
        while not await all_settled() and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        drained_in = time.monotonic() - draining
        # a slow answer to an attempt the bot gave up on may still be on its way: it must
        # change nothing either
        until = time.monotonic() + SLOW + 2
        while any((await in_flight()).values()) and time.monotonic() < until:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # a few more polls: nothing may come twice
        assert await bot.stop() == 0, bot.output[-3000:]

        titles = await posted()
        ledgers = {name: await fake.posts() for name, fake in fakes.items()}
        requests = {name: await fake.requests() for name, fake in fakes.items()}
        rows = sqlite_rows(db, "SELECT destination, state, tweet_id, post_key, text "
                               "FROM posts ORDER BY id")
        report = []
        failures = []
        for name in fakes:
            counts = titles[name]
            missing = sorted(set(wanted) - set(counts))
            duplicated = sorted(t for t, n in counts.items() if n > 1)
            strays = sorted(set(counts) - set(wanted))
            states = collections.Counter(str(r[1]) for r in rows if r[0] == name)
            mine = [r for r in rows if r[0] == name]
            ids = {p.id: p for p in ledgers[name]}
            # a post written down as sent names what the network holds: its id (X, Mastodon)
            # or at:// URI (Bluesky); X's duplicate 403 gives no id, so it may be None there
            wrong_ids = [r for r in mine if r[2] is not None and r[2] not in ids]
            if name != "x":  # the status answers to the Idempotency-Key the post was written
                # with; the record sits under the rkey committed with the post
                wrong_ids += [r for r in mine if r[2] is None or r[2] not in ids
                              or ids[str(r[2])].key != r[3]]
            if name == "x":
                settled = sum(1 for r in requests[name] if r["status"] == 403)
                how = f"settled_by_403={settled}"
            elif name == "mastodon":
                replayed = sum(1 for r in requests[name]["requests"] if r["replayed"])
                how = f"replayed_by_key={replayed}"
            else:
                found = sum(1 for r in requests[name]
                            if r["nsid"] == "com.atproto.repo.getRecord" and r["status"] == 200)
                how = f"found_by_getRecord={found}"
            calls = requests[name]["requests"] if name == "mastodon" else requests[name]
            faults = collections.Counter(r["fault"] for r in calls if r["fault"])
            report.append(f"{name}: posted={sum(counts.values())} missing={len(missing)} "
                          f"duplicated={len(duplicated)} kills_in_flight="
                          f"{in_flight_at_kill[name]} faults={dict(faults)} {how} "
                          f"posts={dict(states)}")
            if missing or duplicated or strays or wrong_ids or states != {
                    "sent": len(published)}:
                failures.append(f"{name}: missing={missing} duplicated={duplicated} "
                                f"strays={strays} wrong_ids={wrong_ids[:5]} states={states}")
        with capsys.disabled():
            print(f"\ncrash test, 3 destinations: seed={seed} articles={len(published)} "
                  f"kills={kills} kills_in_flight={kills_in_flight} slow_faults_queued="
                  f"{dict(slow_faults)} drain={drained_in:.1f}s "
                  f"elapsed={time.monotonic() - began:.1f}s\n  "
                  + "\n  ".join(report))
        waiting = sqlite_rows(db, "SELECT id, destination, state, attempts, "
                                  "round(next_attempt_at - strftime('%s','now'), 1), last_error "
                                  "FROM posts WHERE state <> 'sent'")
        assert not failures, f"seed {seed}:\n" + "\n".join(failures) + f"\nnot sent: {waiting}"
        assert kills == ROUNDS
    finally:
        await asyncio.gather(*(fake.stop() for fake in fakes.values()))
    for name, fake in fakes.items():  # what each fake printed on its way out agrees
        assert fake.final_ledger is not None, name
        assert collections.Counter(map(title_of, fake.final_ledger)) == wanted, name
