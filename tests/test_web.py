"""``/metrics`` and ``/healthz`` of the running service, and its logs (text, JSON, redacted)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.logs import QUIET_LOGGERS, JSONFormatter, Redactor, configure, event_fields
from tests.conftest import CREDENTIALS, SECRETS, BotProcess, bot_env
from tests.fakes.fake_x import FakeX
from tests.fakes.feed_server import FeedServer
from tests.test_cli import bot as run_cli
from tests.test_cli import cli_env

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition: (name, sorted labels) -> value."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def scrape(bot: BotProcess) -> tuple[Samples, str]:
    status, text = await bot.get("/metrics")
    assert status == 200, text
    return samples(text), text


async def test_metrics_health_and_json_logs_of_a_running_service(
    tmp_path: Path, feed_server: FeedServer, fake_x: FakeX, bots: list[BotProcess]
) -> None:
    blog = feed_server.add_blog("/feed.xml", "Metrics blog")
    blog.publish("Older")
    article = blog.publish("Tweeted at once")
    broken = feed_server.url("/broken.xml")
    feed_server.serve_bytes("/broken.xml", b"oops", status=500)
    env = bot_env(tmp_path / "bot.sqlite3", [blog.url, broken], fake_x, BACKFILL=1,
                  LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    bot = await BotProcess(env, tmp_path).start()
    bots.append(bot)

    listening = await bot.wait_for(r'"event": "http_listening"')
    bot.health_url = json.loads(listening.string)["url"]  # BotProcess's regex reads text logs
    await fake_x.wait_for_tweets(1, timeout=20)
    assert fake_x.texts() == [f"Tweeted at once {article.link}"]

    async with asyncio.timeout(20):  # the tweet is counted once X's answer is stored
        while True:
            found, _ = await scrape(bot)
            if value(found, "bot_posts_total", outcome="sent") >= 1 and \
                    value(found, "bot_feed_polls_total", outcome="error") >= 1 and \
                    value(found, "bot_event_loop_lag_seconds_count") > 0:
                break
            await asyncio.sleep(0.2)

    assert value(found, "bot_feed_polls_total", outcome="new") >= 1
    assert value(found, "bot_feed_polls_total", outcome="error") >= 1
    assert value(found, "bot_feed_errors_total", feed=broken) >= 1
    assert ("bot_feed_errors_total", (("feed", blog.url),)) not in found
    assert value(found, "bot_articles_found_total") == 1
    assert value(found, "bot_posts_total", outcome="sent") == 1
    assert value(found, "bot_posts_total", outcome="failed") == 0
    assert value(found, "bot_posts_pending") == 0
    assert value(found, "bot_rate_limit_gate_seconds") == 0
    assert value(found, "bot_event_loop_lag_seconds_count") > 0
    assert value(found, "bot_event_loop_lag_seconds_bucket", le="+Inf") > 0
    assert "bot_event_loop_lag_last_seconds" in {name for name, _ in found}
    assert value(found, "bot_feeds", state="ok") == 1
    assert value(found, "bot_feeds", state="failing") == 1
    assert value(found, "bot_last_successful_poll_timestamp_seconds") > 1.6e9
    assert value(found, "bot_info", version=__import__("bot").__version__) == 1
    status, raw = await bot.get("/metrics")
    assert "# HELP bot_posts_total" in raw and "# TYPE bot_posts_total counter" in raw
    assert "_created" not in raw  # no second series per counter

    status, health = await bot.healthz()
    assert status == 200
    assert health["status"] == "ok" and health["dry_run"] is False
    assert health["feeds"] == {"total": 2, "ok": 1, "failing": 1}
    assert health["pending_posts"] == 0
    assert health["posts"] == {"pending": 0, "sending": 0, "sent": 1, "failed": 0}
    assert isinstance(health["last_successful_poll"], str)
    posting = health["posting"]
    assert isinstance(posting, dict) and posting["posting_broken"] is False
    gate = posting["gate"]
    assert gate["open"] is True and gate["reason"] == "" and gate["seconds_left"] == 0
    states = {f["url"]: f for f in health["feed_states"]}  # type: ignore[union-attr]
    assert states[broken]["state"] == "failing" and states[broken]["last_status"] == 500
    assert states[blog.url]["state"] == "ok"

    port = bot.health_url.split(":")[2].split("/")[0]
    status_cmd = await run_cli("status", cwd=tmp_path,
                               env=cli_env(tmp_path / "bot.sqlite3", HTTP_PORT=port))
    assert status_cmd.rc == 0, status_cmd
    assert f"service:   answering at http://127.0.0.1:{port}/healthz (200 ok)" in status_cmd.out

    assert await bot.stop() == 0
    records = [json.loads(line) for line in bot.lines if line.strip()]  # every line is JSON
    for record in records:
        assert {"ts", "level", "logger", "event", "message"} <= set(record), record
        assert record["ts"].endswith("Z")
        assert record["message"].split(" ", 1)[0] == record["event"]
    by_event = {r["event"]: r for r in records}
    assert by_event["feed_baselined"]["url"] == blog.url
    assert by_event["feed_baselined"]["tweeting"] == "1"
    assert by_event["post_sent"]["tweet_id"] == fake_x.ledger[0].id
    assert by_event["feed_failed"]["url"] == broken
    assert "HTTP 500" in by_event["feed_failed"]["error"]
    assert "worker_stopped" in by_event
    for secret in SECRETS:
        assert secret not in bot.output


# -- logs, in process ----------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lvl in levels.items():
            logging.getLogger(name).setLevel(lvl)
        logging.captureWarnings(False)


def test_event_fields() -> None:
    assert event_fields("feed_polled url=http://x/f.xml status=200 new=1") == (
        "feed_polled", {"url": "http://x/f.xml", "status": "200", "new": "1"})
    assert event_fields("post_failed id=3 reason='HTTP 400: it\\'s bad' (see posts)") == (
        "post_failed", {"id": "3", "reason": "HTTP 400: it's bad"})
    assert event_fields("feed_gone url=http://x/f: the server says 410 Gone; BACKFILL=N") == (
        "feed_gone", {"url": "http://x/f"})
    assert event_fields("worker_stopped") == ("worker_stopped", {})
    assert event_fields("x level=DEBUG event=y ok=1") == ("x", {"ok": "1"})  # reserved names


def test_json_and_text_logs_never_show_a_credential_even_at_debug(
    restore_logging: None
) -> None:
    for fmt in ("json", "text"):
        stream = io.StringIO()
        configure("DEBUG", fmt, secrets=CREDENTIALS.values(), stream=stream)
        log = logging.getLogger("bot.test")
        secret = CREDENTIALS["TWITTER_ACCESS_TOKEN_SECRET"]
        log.debug("signing key=%s&%s", CREDENTIALS["TWITTER_API_SECRET"], secret)
        logging.getLogger("oauthlib").warning("base string with %s", secret)
        try:
            raise RuntimeError(f"bad token {secret}")
        except RuntimeError:
            log.exception("crashed token=%r", secret)
        logging.getLogger("tweepy").debug("headers: %s", secret)  # below WARNING: dropped
        out = stream.getvalue()
        lines = out.strip().splitlines()
        for value in CREDENTIALS.values():
            assert value not in out, (fmt, out)
        assert "***" in out
        if fmt == "json":
            records = [json.loads(line) for line in lines]
            assert [r["event"] for r in records] == ["signing", "base", "crashed"]
            assert records[0]["level"] == "DEBUG" and records[0]["logger"] == "bot.test"
            assert records[0]["key"] == "***&***"
            assert "RuntimeError: bad token ***" in records[2]["exception"]
            assert records[2]["token"] == "***"  # '***' as %r wrote it, unquoted
        else:
            assert "DEBUG   bot.test signing key=***&***" in out
            assert "RuntimeError: bad token ***" in out


def test_redactor_ignores_empty_and_tiny_values_and_sees_url_encoding() -> None:
    redactor = Redactor(["", "ab", "p@ss/word+=x"])
    assert redactor.redact("ab cd p@ss/word+=x") == "ab cd ***"
    assert redactor.redact("oauth_token_secret=p%40ss%2Fword%2B%3Dx&") == \
        "oauth_token_secret=***&"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a_b key=%s", ("p@ss/word+=x",),
                               None)
    assert redactor.filter(record)
    assert json.loads(JSONFormatter().format(record))["key"] == "***"
