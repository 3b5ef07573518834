"""The ``status`` command: the database, the feeds, the posts, the posting gate, and whether
a service answers for this database."""

from __future__ import annotations

import time

import aiohttp

from bot.cli.database import NO_DATABASE, open_store
from bot.cli.display import _ago, _until, _when, plural
from bot.config import Settings
from bot.health import Snapshot
from bot.invocation import command
from bot.text import clip
from bot.times import span


async def status(settings: Settings) -> int:
    from bot.gate import GATE_KEY, Gate
    from bot.health import take

    store = await open_store(settings.database_path, create=False)
    if store is None:
        print(NO_DATABASE.format(path=settings.database_path, cmd=command()))
        return 0
    now = time.time()
    try:
        version = await store.user_version()
        gate = Gate.from_json(await store.get_meta(GATE_KEY))
        view = gate.view(now)
        snapshot = await take(store, view, posting_broken=gate.broken,
                              database_id=await store.get_meta("database_id"), now=now,
                              x_cost_per_post=settings.x_cost_per_post)
        next_due = await store.next_due_at()
    finally:
        await store.close()
    last = snapshot.last_successful_poll
    feeds = ", ".join(f"{state} {n}" for state, n in snapshot.feeds.items() if n)
    lines = [f"database:  {settings.database_path} (schema {version})",
             f"feeds:     {snapshot.total}" + (f" ({feeds})" if feeds else ""),
             "posts:     " + ", ".join(f"{k} {v}" for k, v in snapshot.posts.items()),
             _on_x(snapshot, settings)]
    if not view["open"]:
        lines.append(f"gate:      closed ({gate.reason}) for {span(gate.until - now)} more, "
                     f"until {_when(gate.until)}: {gate.detail}")
    else:
        lines.append("gate:      open")
    lines.append(f"last poll: {_when(last)}" + (f" ({_ago(last, now)})" if last else ""))
    lines.append(f"service:   {await _probe_service(settings, snapshot.database_id)}")
    if snapshot.posts["pending"] and next_due is not None:
        lines.append("next post: " + (f"when the gate opens, {_when(gate.until)}"
                                      if not view["open"] and next_due < gate.until
                                      else _until(next_due, now)))
    failing = snapshot.failing()
    for f in failing[:5]:
        lines.append(f"{f.state}:   {f.url} ({plural(f.consecutive_failures, 'failure')}): "
                     f"{clip(f.last_error, 80)}")
    if len(failing) > 5:
        lines.append(f"… and {len(failing) - 5} more: `{command()} feeds list`")
    print("\n".join(lines))
    return 0


async def _probe_service(settings: Settings, database_id: str | None) -> str:
    """Whether a service answers /healthz at HTTP_HOST:HTTP_PORT (as this shell sees them),
    and whether it is the one that serves this database."""
    if settings.http_port == 0:
        return "HTTP_PORT=0: cannot tell whether it runs"
    host = settings.http_host
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    url = f"http://{host}:{settings.http_port}/healthz"
    try:
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError, OSError):
        return f"not answering at {url}"
    if isinstance(body, dict) and body.get("status") == "starting":
        return f"starting at {url}"
    if not isinstance(body, dict) or body.get("database_id") != database_id:
        return (f"not running on this database: the service answering at {url} serves "
                "another one (another DATABASE_PATH or HTTP_PORT?)")
    return f"answering at {url} ({resp.status} {body.get('status', '?')})"


def _on_x(snapshot: Snapshot, settings: Settings) -> str:
    """``on X:      3 posts in 24 h, 41 in 30 days (about $8.20 at $0.20 a post)``."""
    on_x = snapshot.on_x()
    line = (f"on X:      {plural(on_x['posts_24h'], 'post')} in 24 h, {on_x['posts_30d']} in "
            f"30 days (about ${on_x['estimated_spend_30d_usd']:.2f} at "
            f"${on_x['cost_per_post_usd']:.2f} a post")
    if settings.x_max_spend_per_month is not None:
        line += f"; X_MAX_SPEND_PER_MONTH ${settings.x_max_spend_per_month:g}"
    return line + ")"
