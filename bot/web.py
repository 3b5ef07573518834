"""``GET /healthz`` (JSON; 503 when posting is broken) and ``GET /metrics`` (Prometheus text).

Both are served on ``HTTP_HOST:HTTP_PORT`` (default 127.0.0.1:8080) by the running service.
``/metrics`` refreshes the gauges that describe the present (pending posts, the gate, feeds
by state, the last successful poll) before it renders the registry.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from bot.worker import Worker

log = logging.getLogger(__name__)

INDEX = ("feed-tweeter: GET /healthz (JSON; 503 when posting is broken), "
         "GET /metrics (Prometheus text format)\n")


async def refresh_gauges(worker: Worker) -> None:
    """Set the gauges that describe the present from the same snapshot as /healthz."""
    m = worker.metrics
    if worker.store is None or worker.dispatcher is None:
        return
    snapshot = await worker.snapshot()
    m.pending.set(snapshot.pending)
    m.gate_seconds.set(snapshot.gate.get("seconds_left", 0))
    for state, n in snapshot.feeds.items():
        m.feeds.labels(state).set(n)
    m.last_poll.set(snapshot.last_successful_poll or 0)
    for name, view in snapshot.destinations.items():
        posts = view["posts"]
        m.destination_pending.labels(name).set(posts["pending"] + posts["sending"])
        if "gate" in view:
            m.destination_gate_seconds.labels(name).set(view["gate"].get("seconds_left", 0))
        for window in ("24h", "30d"):
            m.destination_posts.labels(name, window).set(view[f"posts_{window}"])
            if view["network"] == "x":
                m.estimated_spend.labels(name, window).set(view[f"estimated_spend_{window}_usd"])


def make_app(worker: Worker) -> web.Application:
    async def index(request: web.Request) -> web.Response:
        return web.Response(text=INDEX)

    async def healthz(request: web.Request) -> web.Response:
        if worker.store is None or worker.dispatcher is None:
            return web.json_response({"status": "starting"}, status=503)
        try:
            status, body = await worker.health()
        except Exception as exc:  # say why, never a bare 500
            log.exception("healthz_failed")
            return web.json_response({"status": "error",
                                      "error": f"{type(exc).__name__}: {exc}"}, status=503)
        return web.json_response(body, status=status)

    async def metrics(request: web.Request) -> web.Response:
        await refresh_gauges(worker)
        data = generate_latest(worker.metrics.registry)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def start_http(worker: Worker, host: str, port: int) -> web.AppRunner:
    """Listen on ``host:port`` (0 = any free port) and log ``http_listening url=…/healthz``."""
    runner = web.AppRunner(make_app(worker), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0] if runner.addresses else (host, port)
    shown = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
    log.info("http_listening url=http://%s:%s/healthz", shown, bound[1])
    return runner
