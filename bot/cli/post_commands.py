"""The ``posts`` commands: list the posts (``posts``) and queue failed ones again
(``posts retry``)."""

from __future__ import annotations

import argparse
import time

from bot.cli.database import NO_DATABASE, open_store
from bot.cli.display import _ago, _fitted, _table, plural
from bot.config import Settings
from bot.errors import ConfigError
from bot.invocation import command
from bot.networks import network_of
from bot.store import Post, Store
from bot.text import clip


async def posts(settings: Settings, args: argparse.Namespace) -> int:
    retrying = args.posts_command == "retry"
    if retrying and not args.ids and not args.all_failed:
        raise ConfigError("posts retry: give post IDs or --all-failed")
    if retrying and args.ids and args.all_failed:
        raise ConfigError("posts retry: give post IDs or --all-failed, not both")
    store = await open_store(settings.database_path, create=False)
    if store is None:
        if retrying and args.ids:
            raise ConfigError(f"not a failed post: {', '.join(map(str, args.ids))} "
                              f"(there is no database at {settings.database_path!r} yet)")
        print(NO_DATABASE.format(path=settings.database_path, cmd=command()))
        return 0
    try:
        if retrying:
            return await posts_retry(store, args)
        destination = (getattr(args, "destination", None) or "").strip().lower() or None
        listed = await store.posts(args.state, args.limit, destination)
    finally:
        await store.close()
    if not listed:
        print("no posts" + (f" in state {args.state}" if args.state else ""))
        return 0
    now = time.time()
    if args.wide:
        rows = [[str(p.id), p.destination, p.state, str(p.attempts), _ago(p.created_at, now),
                 p.tweet_id or "-", clip(p.last_error, 300) or "-", clip(p.text, 300)]
                for p in listed]
        print(_table(rows, ["ID", "TO", "STATE", "TRIES", "CREATED", "POSTED AS", "LAST ERROR",
                            "TEXT"]))
        return 0
    rows = [[str(p.id), p.destination, p.state, str(p.attempts), _ago(p.created_at, now),
             p.text or f"(entry {p.link or '?'})"] for p in listed]
    print(_fitted(rows, ["ID", "TO", "STATE", "TRIES", "CREATED", "TEXT"], flex=5,
                  notes=[_post_note(p) for p in listed]))
    return 0


def _post_note(post: Post) -> str | None:
    """The line under a post in `posts`: where it is on its network, or why it is not
    there yet."""
    if post.tweet_id:
        where = _where(post)
        return f"{where} ({post.last_error})" if post.last_error else where
    return post.last_error


def _where(post: Post) -> str:
    """``on X: https://x.com/i/status/ID``; a Mastodon status id or a Bluesky at:// URI as
    they are (the instance's web address is not stored)."""
    network = network_of(post.destination)
    if network == "x":
        return f"on X: https://x.com/i/status/{post.tweet_id}"
    if network == "bluesky" and post.tweet_id and post.tweet_id.startswith("at://"):
        repo, _, rkey = post.tweet_id.removeprefix("at://").partition("/app.bsky.feed.post/")
        if rkey:
            return f"on {post.destination}: https://bsky.app/profile/{repo}/post/{rkey}"
    return f"on {post.destination}: {post.tweet_id}"


async def posts_retry(store: Store, args: argparse.Namespace) -> int:
    if args.all_failed:
        changed = await store.retry_failed(None)
        if not changed:
            print("no failed posts")
            return 0
    else:
        ids = list(dict.fromkeys(args.ids))
        found = {i: await store.post(i) for i in ids}
        unknown = [str(i) for i, p in found.items() if p is None]
        if unknown:
            raise ConfigError(f"no such post: {', '.join(unknown)} "
                              f"(see `{command()} posts --state failed`)")
        not_failed = [f"{i} is {p.state}" for i, p in found.items()
                      if p is not None and p.state != "failed"]
        if not_failed:
            raise ConfigError(f"not a failed post: {', '.join(not_failed)} "
                              "(only failed posts can be retried)")
        textless = [f"{i} ({clip(p.last_error, 120)})" for i, p in found.items()
                    if p is not None and not p.text]
        if textless:
            raise ConfigError(f"never had a text, so there is nothing to send: "
                              f"{', '.join(textless)}; fix the feed or the template")
        changed = await store.retry_failed(ids)
    print(f"queued {plural(changed, 'post')} again (state pending); the running service "
          "sends them")
    return 0
