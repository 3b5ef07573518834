"""A loopback feed server for the polling benchmark, run as its own process.

    python -m bench.loopserver --feeds 10000 --hosts 16 [--change-fraction 0.01]
                               [--change-every 20]

Serves ``GET /f/{n}.xml`` for n in 0..feeds-1 on 127.0.0.1 .. 127.0.0.{hosts} (one port for
all), each a tiny RSS 2.0 document with a per-path ETag: ``304`` when ``If-None-Match``
matches, ``200`` with the body otherwise. Every ``change-every`` seconds a random
``change-fraction`` of the feeds get a new item (a new ETag), so the steady state is "almost
all 304". It prints ``PORT=<port>`` once listening and runs until SIGTERM/SIGINT.

Control, for the benchmark driver:

With ``--corpus DIR`` it also serves every file of DIR at ``/c/{name}``, always ``200`` and
without validators (a feed that changes on every poll: the parsing benchmark).

* ``POST /_reset`` forgets the hits recorded so far (start of a measurement window);
* ``GET /_stats`` returns ``{"hits": {n: [unix times]}, "cpu": seconds, "requests": count}``.

It runs in a separate process so that its CPU is never counted as the bot's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import time

from aiohttp import web

RSS_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            "<title>Feed {n}</title><link>http://{host}/f/{n}/</link>"
            "<description>bench feed {n}</description>")
RSS_ITEM = ("<item><title>Feed {n} post {v}</title><link>http://{host}/f/{n}/{v}</link>"
            "<guid>http://{host}/f/{n}/{v}</guid><pubDate>{date}</pubDate>"
            "<description>Post {v} of feed {n}.</description></item>")
RSS_TAIL = "</channel></rss>\n"
ITEMS = 3  # items per document: the newest three versions


class LoopServer:
    def __init__(self, feeds: int, change_fraction: float, change_every: float,
                 seed: int = 1, corpus: str | None = None) -> None:
        self.corpus: dict[str, bytes] = {}
        if corpus:
            from pathlib import Path

            self.corpus = {p.name: p.read_bytes() for p in Path(corpus).iterdir()}
        self.feeds = feeds
        self.version = [1] * feeds
        self.hits: dict[int, list[float]] = {}
        self.requests = 0
        self.change_fraction = change_fraction
        self.change_every = change_every
        self.rng = random.Random(seed)
        self.born = time.time()

    def etag(self, n: int) -> str:
        return f'"{n}.{self.version[n]}"'

    def body(self, n: int, host: str) -> bytes:
        v = self.version[n]
        items = []
        for k in range(v, max(0, v - ITEMS), -1):
            date = time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                 time.gmtime(self.born + k))
            items.append(RSS_ITEM.format(n=n, v=k, host=host, date=date))
        return (RSS_HEAD.format(n=n, host=host) + "".join(items) + RSS_TAIL).encode()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/f/") and path.endswith(".xml"):
            try:
                n = int(path[3:-4])
            except ValueError:
                return web.Response(status=404)
            if not 0 <= n < self.feeds:
                return web.Response(status=404)
            self.requests += 1
            self.hits.setdefault(n, []).append(time.time())
            etag = self.etag(n)
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            return web.Response(body=self.body(n, request.host), headers={"ETag": etag},
                                content_type="application/rss+xml", charset="utf-8")
        if path.startswith("/c/") and path[3:] in self.corpus:
            self.requests += 1
            body = self.corpus[path[3:]]
            kind = "application/json" if body.lstrip()[:1] == b"{" else "application/xml"
            return web.Response(body=body, content_type=kind)
        if path == "/_reset":
            self.hits = {}
            self.requests = 0
            return web.json_response({"ok": True})
        if path == "/_stats":
            return web.json_response({"hits": self.hits, "cpu": time.process_time(),
                                      "requests": self.requests})
        return web.Response(status=404)

    async def churn(self) -> None:
        count = round(self.feeds * self.change_fraction)
        while count > 0:
            await asyncio.sleep(self.change_every)
            for n in self.rng.sample(range(self.feeds), count):
                self.version[n] += 1


async def serve(args: argparse.Namespace) -> None:
    server = LoopServer(args.feeds, args.change_fraction, args.change_every,
                        corpus=args.corpus)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5,
                           keepalive_timeout=300)
    await runner.setup()
    first = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await first.start()
    port = runner.addresses[0][1]
    for i in range(2, args.hosts + 1):
        await web.TCPSite(runner, f"127.0.0.{i}", port, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    churn = asyncio.create_task(server.churn())
    print(f"PORT={port}", flush=True)
    try:
        await stop.wait()
    finally:
        churn.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await churn
        await runner.cleanup()
    print(json.dumps({"cpu": time.process_time()}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.loopserver")
    p.add_argument("--feeds", type=int, default=10_000)
    p.add_argument("--hosts", type=int, default=16)
    p.add_argument("--change-fraction", type=float, default=0.01)
    p.add_argument("--change-every", type=float, default=20.0)
    p.add_argument("--corpus", help="also serve this directory's files at /c/NAME")
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
