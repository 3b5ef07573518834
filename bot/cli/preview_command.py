"""The ``preview`` command (what a feed's newest entries would be tweeted as, writing
nothing), and :func:`fetch_feed`, which reads a feed or finds it from a blog's web page
(autodiscovery) for ``preview`` and ``feeds add``."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp

from bot.cli.database import read_feed_settings
from bot.cli.options import _hashtag_list, _regex, _template
from bot.compose import compose_posts
from bot.config import Settings, check_feed_url
from bot.errors import ConfigError, FeedError, FeedParseError
from bot.models import ParsedFeed
from bot.networks import LengthRule, X, mastodon_rule, rule_for
from bot.store.peek import FeedSettings
from bot.text import clip


async def fetch_feed(settings: Settings, url: str, *,
                     say: Callable[[str], None] = print) -> tuple[str, ParsedFeed]:
    """The feed at ``url`` and its URL. For a web page (a blog's home page), the feed the page
    advertises, as feed readers find it (:mod:`bot.discover`); ``say`` tells which one.
    Raises FeedError (HTTP error, timeout, not a feed) with a message for the user."""
    from bot.discover import choose, find_feed_links, looks_like_html
    from bot.feeds import Fetcher
    from bot.parse import parse_feed

    if url.startswith("sqlite:"):
        from bot.blogdb import read_blog_db

        return url, await read_blog_db(url)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.feed_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        fetcher = Fetcher(session, timeout=settings.feed_timeout,
                          max_bytes=settings.max_feed_bytes)
        result = await fetcher.fetch(url)
        if looks_like_html(result.body, result.content_type):
            links = find_feed_links(result.body, result.final_url or url, result.content_type)
            chosen = choose(links)
            if chosen is None:
                raise FeedParseError(f"not a feed: {url} is a web page that names no feed "
                                     '(no <link rel="alternate">); give the feed\'s own URL')
            named = f" ({chosen.title})" if chosen.title else ""
            say(f"{url} is a web page; it names its feed: {chosen.url}{named}")
            for other in (link for link in links if link != chosen):
                say(f"  it also names {other.url}" + (f" ({other.title})" if other.title else ""))
            url = chosen.url
            result = await fetcher.fetch(url)
    loop = asyncio.get_running_loop()
    return url, await loop.run_in_executor(None, parse_feed, result.body, url,
                                           result.content_type)


async def preview(settings: Settings, args: argparse.Namespace) -> int:
    from bot.decide import Filters, oldest_first

    url = args.url.strip()
    if why := check_feed_url(url):
        raise ConfigError(f"{url!r} is not a feed URL: {why}")
    own = await asyncio.to_thread(read_feed_settings, settings.database_path, url) \
        or FeedSettings()
    template = _template(args.template) if args.template else (own.template or
                                                               settings.tweet_template)
    extra = _hashtag_list(args.hashtags) if args.hashtags is not None else (own.hashtags or "")
    include = _regex("--include", args.include) if args.include is not None else own.include_re
    exclude = _regex("--exclude", args.exclude) if args.exclude is not None else own.exclude_re
    hashtags = " ".join(x for x in (settings.hashtags, extra) if x)
    mentions = args.mentions or own.mentions or settings.mentions
    try:
        filters = Filters.compile(include, exclude)
    except re.error as exc:
        raise ConfigError(f"the feed's own filter is not a valid regex: {exc}") from None

    try:
        url, parsed = await fetch_feed(settings, url)
    except FeedError as exc:
        print(f"feed-tweeter: cannot read {url}: {exc}", file=sys.stderr)
        return 1

    rules = await _rules(settings)
    if own.destinations:  # the feed's own `--to`: its destinations only (those configured)
        named = own.destinations.split(",")
        rules = {name: rule for name, rule in rules.items() if name in named} or rules
    newest = oldest_first(parsed.entries, datetime.now(UTC))[-args.count:]
    used = [f"template {template!r}"]
    used += [f"{name} {value!r}" for name, value in (
        ("hashtags", hashtags), ("include", include), ("exclude", exclude)) if value]
    if mentions == "keep":
        used.append("mentions 'keep'")
    print(f"{parsed.title or url}: {len(parsed.entries)} entries; the newest {len(newest)}, "
          f"oldest first, would be tweeted as ({', '.join(used)}):\n")
    for entry in newest:
        if not filters.accepts(entry):
            print(f"--- filtered out (never tweeted): {clip(entry.title, 100)}\n")
            continue
        for name, rule in rules.items():
            (composed,) = compose_posts(template, [entry], parsed.title, parsed.link, hashtags,
                                        keep_mentions=mentions == "keep", rule=rule)
            where = f"{name}: " if settings.destinations else ""
            if composed.text is None:
                print(f"--- {where}cannot be posted (it would be recorded as a failed post): "
                      f"{composed.error}\n  entry: {clip(entry.title, 100) or entry.id}\n")
                continue
            print(f"--- {where}{rule.measure(composed.text)}/{rule.limit}\n{composed.text}\n")
    if not parsed.entries:
        print("(the feed has no entries)")
    if list(rules) == ["x"] and not settings.destinations:
        print("(X's text is shown; with MASTODON_… or BLUESKY_… set, each destination's is)")
    return 0


async def _rules(settings: Settings) -> dict[str, LengthRule]:
    """Each destination's length rule (X's when none is configured); a Mastodon
    instance's limits are asked for, for at most 5 seconds."""
    rules = {d.name: rule_for(d.network) for d in settings.outlets} or {"x": X}
    mastodons = [d for d in settings.outlets if d.network == "mastodon"]
    if not mastodons:
        return rules
    from bot.mastodon import MastodonClient

    async with aiohttp.ClientSession() as session:
        clients = [MastodonClient(base_url=d.base_url, access_token=d.get("MASTODON_ACCESS_TOKEN"),
                                  session=session, timeout=5.0) for d in mastodons]
        answers = await asyncio.gather(*(c.limits() for c in clients))
    for d, (most, per_url, _) in zip(mastodons, answers, strict=True):
        rules[d.name] = mastodon_rule(most, per_url)
    return rules
