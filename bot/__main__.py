"""Command line: ``python -m bot run`` (the service) and the operator's commands.

Settings come from the environment over a ``.env`` file in the working directory (the real
environment wins). Exit status: 0 on success, 1 when a command could not do its work (a feed
could not be fetched, a database error), 2 on bad input or configuration, 3 when ``run`` finds
another bot running on the same database; the reason is on stderr, ``feed-tweeter: …``
(a configuration error lists each problem on a line of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from bot import __version__
from bot.config import Environment
from bot.errors import BotError, ConfigError, SchemaTooNewError
from bot.models import PostState

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_ALREADY_RUNNING, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def environment(dotenv_path: str = ".env") -> Environment:
    """The process environment over the values of a ``.env`` file (the environment wins)."""
    from_file: dict[str, str] = {}
    if os.path.isfile(dotenv_path):
        from dotenv import dotenv_values

        from_file = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
    return Environment({**from_file, **os.environ}, dotenv_keys=from_file)


def _lines(exc: BaseException) -> str:
    """A configuration error for a terminal: one problem per line, under one heading."""
    problems = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(problems) == 1:
        return f"feed-tweeter: {problems[0]}"
    return f"feed-tweeter: {problems[0]}\n" + "\n".join(f"  {p}" for p in problems[1:])


def one_line(message: str) -> str:
    """``ConfigError`` texts list several problems on indented lines; say them on one."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip()) \
        .replace(":;", ":")


# -- the parser ------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command and where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _nonneg_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _post_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a post ID is a number, got {raw!r}") from None


def _feed_settings(p: argparse.ArgumentParser, *, for_preview: bool = False) -> None:
    what = "to try instead of the feed's own or TWEET_TEMPLATE" if for_preview else \
        "for this feed instead of TWEET_TEMPLATE ('' clears it)"
    p.add_argument("--template", metavar="T",
                   help=f"tweet template {what}, e.g. '{{title}} {{url}}'; "
                   "fields: {title} {url} {feed_title} {author} {summary} {hashtags}")
    p.add_argument("--hashtags", metavar='"#A #B"',
                   help="hashtags added to the tweets, after those of HASHTAGS"
                   + ("" if for_preview else "; '' clears them"))
    p.add_argument("--include", metavar="REGEX",
                   help="tweet only entries whose title, summary or categories match "
                   "(case-insensitive)" + ("" if for_preview else "; '' clears it"))
    p.add_argument("--exclude", metavar="REGEX",
                   help="never tweet entries whose title, summary or categories match; "
                   "filtered entries are recorded as seen and never tweeted later"
                   + ("" if for_preview else "; '' clears it"))
    p.add_argument("--mentions", choices=("neutralise", "keep"),
                   help="keep: @names in this feed's titles and text become live mentions "
                   "that notify those accounts; neutralise (the default, see MENTIONS): they "
                   "read the same but notify no one")


def _version() -> str:
    """The installed distribution's version; ``bot.__version__`` in a checkout never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("feed-tweeter")
    except PackageNotFoundError:
        return __version__


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = Parser(prog="feed-tweeter", formatter_class=fmt, description=(
        "Watch blog feeds and tweet each new article once.\n\n"
        "Settings come from the environment, or from a .env file in the working directory\n"
        "(the environment wins): see .env.example. Every command uses DATABASE_PATH."),
        epilog="exit status: 0 ok, 1 the command could not do its work, "
               "2 bad input or configuration, 3 another bot runs on this database")
    p.add_argument("--version", action="version", version=f"feed-tweeter {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", formatter_class=fmt,
                         help="run the service (what `make run` starts)", description=(
        "Run the service: poll every feed of FEED_URLS and of `feed-tweeter feeds add` on its own\n"
        "schedule, tweet each new article, serve /healthz and /metrics on HTTP_HOST:HTTP_PORT.\n"
        "A feed's first poll records what is there and tweets only the newest BACKFILL.\n"
        "SIGTERM or Ctrl-C stops it gracefully; unsent posts are kept for the next start."))
    run.add_argument("--once", action="store_true",
                     help="poll every feed once, send what is due, and exit")

    feeds = sub.add_parser("feeds", formatter_class=fmt, help="list, add, remove, pause or resume "
                           "feeds", description="List or change the feeds (without ACTION: list).\n"
                           "A running service picks changes up within 30 seconds.")
    fsub = feeds.add_subparsers(dest="feeds_command", metavar="ACTION")
    flist = fsub.add_parser("list", help="every feed: URL, state, last and next poll, "
                            "articles seen, posts sent; why it fails",
                            description="Every feed with its state (new, ok, failing, paused, "
                            "gone, inactive), its last and next poll, articles seen and posts "
                            "sent, fitted to the terminal; a failing feed's error below it. "
                            "--wide: every column (title, failures, last error, settings).")
    flist.add_argument("--wide", action="store_true", help="every column, however wide")
    add = fsub.add_parser("add", formatter_class=fmt, help="subscribe to a feed, or change the "
                          "settings of one", description=(
        "Subscribe to a feed. It is read once first: an HTTP error, a timeout or a page that\n"
        "is not a feed is said at once, and nothing is added. Given a web page (a blog's home\n"
        "page), the feed it names is added. Its first poll records what is there and tweets\n"
        "nothing but the newest --backfill entries (default BACKFILL). For a feed already\n"
        "there, only the settings given change. A feed's own settings win over the\n"
        "environment's."),
        epilog="example: feed-tweeter feeds add https://blog.example.org/feed.xml "
               "--include 'python|asyncio' --hashtags '#python' --backfill 1")
    add.add_argument("url", help="the feed's URL (RSS, Atom, RDF or JSON Feed)")
    _feed_settings(add)
    add.add_argument("--backfill", type=_nonneg_int, metavar="N",
                     help="tweet the newest N entries on the first poll (default: BACKFILL)")
    add.add_argument("--no-check", action="store_true",
                     help="add it without reading it first (for a feed that is down right now)")
    add.add_argument("--to", metavar="DEST,…",
                     help="post this feed's articles only to these destinations, e.g. "
                     "'x,mastodon' or 'bluesky,mastodon:news' (default: every destination "
                     "configured; '' clears it)")
    imp = fsub.add_parser("import", help="subscribe to every feed of an OPML file (any feed "
                          "reader's export) or of a text file of URLs, one per line",
                          description="Subscribe to every feed of FILE: an OPML file, as every "
                          "feed reader exports it, or a text file of feed URLs, one per line "
                          "(# starts a comment). Feeds already there are kept as they are.")
    imp.add_argument("file", help="the OPML or text file")
    exp = fsub.add_parser("export", help="every feed as OPML 2.0, for a feed reader or "
                          "another bot", description="Write every feed (paused ones too) as "
                          "an OPML 2.0 document, which any feed reader imports.")
    exp.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    for name, text in (("remove", "stop polling a feed; its history is kept (a URL of "
                        "FEED_URLS comes back at the next start)"),
                       ("pause", "stop polling a feed until `feed-tweeter feeds resume`"),
                       ("resume", "poll a paused, gone or removed feed again")):
        action = fsub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        action.add_argument("url", help="the feed's URL, as `feed-tweeter feeds list` shows it")

    preview = sub.add_parser("preview", formatter_class=fmt, help="fetch a feed now and print "
                             "the tweets its newest entries would become; writes nothing",
                             description=(
        "Fetch a feed now and print the posts its newest N entries would become, for each\n"
        "destination configured (X when none is), each with its length under that network's\n"
        "rule: X's 280 weighted characters (a link counts 23, CJK and emoji 2), the Mastodon\n"
        "instance's limit (500; a link counts 23), Bluesky's 300 characters (the link shown\n"
        "short). Uses the feed's own settings when it is subscribed, else the environment's;\n"
        "the options below override both. Writes nothing: not even the database is created."))
    preview.add_argument("url", help="the feed's URL")
    preview.add_argument("--count", type=_positive_int, default=3, metavar="N",
                         help="how many of the newest entries (default 3)")
    _feed_settings(preview, for_preview=True)

    posts = sub.add_parser("posts", formatter_class=fmt, help="the queue of posts; "
                           "`posts retry ID` sends a failed one again", description=(
        "List the posts, newest first, or send failed ones again. Each article has a post\n"
        "per destination (x, mastodon, bluesky, …).\n"
        "States: pending (waiting), sending (with the network now), sent, failed (refused)."),
        epilog="examples: feed-tweeter posts --state failed; "
               "feed-tweeter posts retry 12 13; feed-tweeter posts retry --all-failed")
    posts.add_argument("--state", choices=[str(state) for state in PostState],
                       help="only posts in this state")
    posts.add_argument("--limit", type=_positive_int, default=50, metavar="N",
                       help="at most N posts (default 50)")
    posts.add_argument("--wide", action="store_true",
                       help="every column (the post's id on its network, last error), "
                       "however wide")
    posts.add_argument("--to", metavar="DEST", dest="destination",
                       help="only the posts for this destination (x, mastodon, …)")
    psub = posts.add_subparsers(dest="posts_command", metavar="ACTION")
    retry = psub.add_parser("retry", help="send failed posts again",
                            description="Queue failed posts again (state pending; the "
                            "attempts made are kept, so one that may have landed is looked "
                            "for first); the running service sends them.")
    retry.add_argument("ids", nargs="*", type=_post_id, metavar="ID", help="post IDs")
    retry.add_argument("--all-failed", action="store_true", help="every failed post")

    sub.add_parser("status", help="one screen: feeds and posts by state, the rate-limit gate, "
                   "the last poll", description="One screen: feeds by state, posts by state, "
                   "the rate-limit gate, the last successful poll, the feeds that are failing.")
    return p


# -- entry point -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        env = environment() if env is None else env
        if args.command == "run":
            return run_service(env, once=args.once)
        from bot import cli

        return asyncio.run(cli.dispatch(args, env))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (ConfigError, SchemaTooNewError) as exc:
        print(_lines(exc), file=sys.stderr)
        return EXIT_USAGE
    except BotError as exc:
        print(f"feed-tweeter: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except sqlite3.Error as exc:
        print(f"feed-tweeter: database error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `feed-tweeter posts | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        return 0
    except OSError as exc:  # e.g. a .env file that cannot be read
        print(f"feed-tweeter: {exc}", file=sys.stderr)
        return EXIT_ERROR


def run_service(env: Mapping[str, str], *, once: bool = False) -> int:
    from bot.cli import database_problem
    from bot.config import CREDENTIALS, Settings
    from bot.destinations import SECRETS
    from bot.lock import AlreadyRunningError, service_lock
    from bot.logs import configure

    # FEED_URLS may be empty when feeds were added with `feed-tweeter feeds add`: the worker says
    # "no feed to watch" itself once it has looked at the database.
    settings = Settings.from_env(env, require_feeds=False)
    if problem := database_problem(settings.database_path):  # a folder, a text file, …
        raise ConfigError(problem)
    # one service per database: the lock is taken before anything opens the database
    try:
        with service_lock(settings.database_path):
            configure(settings.log_level, settings.log_format,
                      secrets=[*(env.get(name, "").strip() for name in CREDENTIALS),
                               *(d.get(base) for d in settings.destinations
                                 for base in SECRETS)])
            for warning in settings.warnings:
                logging.getLogger("bot").warning("setting_unknown %s", warning)
            return asyncio.run(_serve(settings, once))
    except AlreadyRunningError as exc:
        print(f"feed-tweeter: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING


async def _serve(settings, once: bool) -> int:  # type: ignore[no-untyped-def]
    from bot.web import start_http
    from bot.worker import Worker

    log = logging.getLogger("bot")
    worker = Worker(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    runner = None
    code = EXIT_OK
    try:
        # the port first: a service that cannot serve /healthz changes nothing in the database
        runner = await start_http(worker, settings.http_host, settings.http_port)
        await worker.start()
        if once:
            reports = await worker.run_once()
            log.info("run_once_done feeds=%d failed=%d new=%d", len(reports),
                     sum(1 for r in reports if r.error), sum(r.new for r in reports))
        else:
            await worker.run()
    except (ConfigError, SchemaTooNewError) as exc:
        log.error("startup_failed reason=%r", one_line(str(exc)))
        code = EXIT_USAGE
    except BotError as exc:
        log.error("startup_failed reason=%r", one_line(str(exc)))
        code = EXIT_ERROR
    except sqlite3.Error as exc:
        log.error("startup_failed reason=%r", f"cannot use the database "
                  f"{settings.database_path!r} (DATABASE_PATH): {exc}")
        code = EXIT_ERROR
    except OSError as exc:  # the HTTP port is taken, the disk is full, …
        log.error("startup_failed reason=%r", f"{exc} (HTTP_HOST={settings.http_host} "
                  f"HTTP_PORT={settings.http_port})" if runner is None else str(exc))
        code = EXIT_ERROR
    finally:
        if runner is not None:
            await runner.cleanup()
        await worker.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return code


if __name__ == "__main__":
    sys.exit(main())
