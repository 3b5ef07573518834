"""The ``status`` command: the database, the feeds, the posts, each destination's posts and
gate, and whether a service answers for this database."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.cli.database import NO_DATABASE, open_store
from bot.cli.display import _ago, _until, _when, plural
from bot.config import Settings
from bot.invocation import command
from bot.text import clip
from bot.times import span

if TYPE_CHECKING:
    from bot.gate import Gate


async def status(settings: Settings) -> int:
    from bot.gate import Gate, gate_key
    from bot.health import take

    store = await open_store(settings.database_path, create=False)
    if store is None:
        print(NO_DATABASE.format(path=settings.database_path, cmd=command()))
        return 0
    now = time.time()
    try:
        version = await store.user_version()
        # the destinations configured here, and any other the database has posts for
        names = [d.name for d in settings.outlets] or ["x"]
        names += sorted(set(await store.destination_counts()) - set(names))
        gates = {name: Gate.from_json(await store.get_meta(gate_key(name))) for name in names}
        snapshot = await take(store, destinations={
            name: {"gate": gate.view(now),
                   "posting_broken": gate.broken} for name, gate in gates.items()},
            database_id=await store.get_meta("database_id"), now=now,
            x_cost_per_post=settings.x_cost_per_post)
        next_due = {name: await store.next_due_at(name) for name in names}
    finally:
        await store.close()
    last = snapshot.last_successful_poll
    feeds = ", ".join(f"{state} {n}" for state, n in snapshot.feeds.items() if n)
    lines = [f"database:  {settings.database_path} (schema {version})",
             f"feeds:     {snapshot.total}" + (f" ({feeds})" if feeds else ""),
             "posts:     " + ", ".join(f"{k} {v}" for k, v in snapshot.posts.items())]
    configured = {d.name for d in settings.outlets}
    for name, gate in gates.items():
        lines.append(_destination_line(name, snapshot.destinations[name], gate, now, settings,
                                       configured=not configured or name in configured))
    lines.append(f"last poll: {_when(last)}" + (f" ({_ago(last, now)})" if last else ""))
    lines.append(f"service:   {await _probe_service(settings, snapshot.database_id)}")
    waits = []  # (when, how to say it) for each destination with a post pending
    for name, due in next_due.items():
        if due is None or not snapshot.destinations[name]["posts"]["pending"]:
            continue
        gate = gates[name]
        if gate.closed(now) and due < gate.until:
            waits.append((gate.until, f"when the gate opens, {_when(gate.until)}"))
        else:
            waits.append((due, _until(due, now)))
    if waits:
        _, said = min(waits)
        lines.append(f"next post: {said}")
    failing = snapshot.failing()
    for f in failing[:5]:
        lines.append(f"{f.state}:   {f.url} ({plural(f.consecutive_failures, 'failure')}): "
                     f"{clip(f.last_error, 80)}")
    if len(failing) > 5:
        lines.append(f"… and {len(failing) - 5} more: `{command()} feeds list`")
    print("\n".join(lines))
    return 0


def _destination_line(name: str, view: dict[str, Any], gate: Gate, now: float,
                      settings: Settings, *, configured: bool) -> str:
    """``x:         3 posts in 24 h, 41 in 30 days (about $8.20 at $0.20 a post); gate open``:
    what went out to one destination, what waits, and its gate."""
    line = f"{name + ':':<10} {plural(view['posts_24h'], 'post')} in 24 h, " \
           f"{view['posts_30d']} in 30 days"
    if view["network"] == "x":
        line += (f" (about ${view['estimated_spend_30d_usd']:.2f} at "
                 f"${view['cost_per_post_usd']:.2f} a post")
        if settings.x_max_spend_per_month is not None:
            line += f"; X_MAX_SPEND_PER_MONTH ${settings.x_max_spend_per_month:g}"
        line += ")"
    waiting = view["posts"]["pending"] + view["posts"]["sending"]
    if waiting:
        line += f"; {waiting} waiting"
    if not configured:
        return line + "; not configured here"
    if gate.closed(now):
        return line + (f"; gate closed ({gate.reason}) for {span(gate.until - now)} more, "
                       f"until {_when(gate.until)}: {gate.detail}")
    if gate.broken:
        return line + f"; posting broken ({gate.reason}), probing: {gate.detail}"
    return line + "; gate open"


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
