"""What the loopback fakes of ``tests/fakes`` share.

- :class:`LoopbackServer`: an aiohttp server's life cycle (``start``/``close``, ``async
  with``, ``base_url``); every fake, the feed server included, is one.
- :class:`FakeService`: a network's fake on top of that: ``delay``, ``clock``, the fault
  queue with ``fail_ratio``/``rng``, ``in_flight``, ``reject_credentials``, waiting for N
  accepted items, ``GET …_requests``/``…_ledger`` and the ``POST …/_control`` plumbing.
- :class:`Fault`: the base of each network's ``Fault``: ``status``, ``cut_before``,
  ``cut_after``, ``slow`` and ``from_json``.
- Standalone use: :func:`command_parser`, :func:`stop_event`, :func:`run` and
  :func:`run_fake` (prints ``FAKE_<NETWORK>_URL=…``, serves until SIGTERM/SIGINT, then
  prints ``LEDGER <json list of texts>``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import random
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Self, TypeVar

from aiohttp import web

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

FaultKind = Literal["status", "cut_before", "cut_after", "slow"]

JSON = "application/json"

T = TypeVar("T")


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, consumed by one request.

    Build them with the class methods; a JSON description for a fake's ``_control`` is
    ``{"kind": "<class method name>", **its keyword arguments}``, where the class method is
    one of ``_KINDS``. A subclass sets ``_JSON_TYPE``, the content type of a dict body.
    """

    kind: FaultKind
    code: int = 0
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON
    seconds: float = 0.0

    _JSON_TYPE: ClassVar[str] = JSON
    _KINDS: ClassVar[tuple[str, ...]] = ("status", "cut_before", "cut_after", "slow")

    @classmethod
    def status(
        cls,
        code: int,
        body: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> Self:
        """Answer ``code`` with ``body`` (a dict is sent as JSON, a str as is)."""
        if content_type is None:
            content_type = cls._JSON_TYPE if isinstance(body, dict) else "text/plain"
        return cls("status", code, body, dict(headers or {}), content_type)

    @classmethod
    def cut_before(cls) -> Self:
        """Close the connection without answering and without posting."""
        return cls("cut_before")

    @classmethod
    def cut_after(cls) -> Self:
        """Post (as a success would), then close the connection without answering."""
        return cls("cut_after")

    @classmethod
    def slow(cls, seconds: float) -> Self:
        """Sleep ``seconds`` (on top of the fake's ``delay``), then handle normally."""
        return cls("slow", seconds=seconds)

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Self:
        """Build from ``{"kind": "<class method name>", **kwargs}``."""
        spec = dict(spec)
        kind = spec.pop("kind")
        factories: dict[str, Callable[..., Self]] = {k: getattr(cls, k) for k in cls._KINDS}
        if kind not in factories:
            raise ValueError(f"unknown fault kind {kind!r}")
        return factories[kind](**spec)


F = TypeVar("F", bound=Fault)
R = TypeVar("R", bound="DataclassInstance")  # a fake's request record


class LoopbackServer:
    """An aiohttp server on a loopback port; a subclass builds its app in :meth:`_build_app`
    and names itself in ``_NAME`` (for "… is not started")."""

    _NAME: ClassVar[str] = "LoopbackServer"

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    def _build_app(self) -> web.Application:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 = a free port) and return the base URL."""
        self._runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
        return self._base_url

    async def close(self) -> None:
        """Stop listening; handlers still running after 0.5 s are cancelled."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the address it listens on); RuntimeError before
        :meth:`start`."""
        if self._base_url is None:
            raise RuntimeError(f"{self._NAME} is not started")
        return self._base_url


class FakeService(LoopbackServer, Generic[F, R]):
    """A network's fake: the steering and fault plumbing the fakes share.

    A subclass sets ``_fault_type`` (its :class:`Fault` class), answers :meth:`texts`,
    :meth:`_random_server_error` and :meth:`_random_rate_limit`, and may extend the
    ``_control`` hooks (:meth:`_fault_queues`, :meth:`_check_control`,
    :meth:`_apply_control`, :meth:`_control_state`). ``requests`` holds its request records
    (type ``R``), appended as each request finishes.
    """

    _fault_type: type[F]
    _RECENT: ClassVar[tuple[str, ...]] = ("status", "fault", "text")  # in wait timeouts
    _CALLS: ClassVar[str] = "requests"  # what the timeout message calls the requests

    def __init__(
        self,
        *,
        delay: float,
        clock: Callable[[], float],
        fail_ratio: float,
        rng: random.Random | None,
    ) -> None:
        super().__init__()
        self.delay = delay
        self.clock = clock
        self.fail_ratio = fail_ratio
        self.rng = rng or random.Random()
        self.requests: list[R] = []  # appended as each request finishes
        self.faults: collections.deque[F] = collections.deque()
        self.in_flight = 0
        self.max_in_flight = 0
        self._reject_credentials = False

    # -- inspection and steering ---------------------------------------------------------

    def texts(self) -> list[str]:
        """The accepted texts, in order."""
        raise NotImplementedError

    def reject_credentials(self, flag: bool) -> None:
        """While True every post gets 401 (a revoked token); False means "fixed"."""
        self._reject_credentials = flag

    @property
    def rejecting_credentials(self) -> bool:
        """Whether :meth:`reject_credentials` is in force."""
        return self._reject_credentials

    async def _wait_for(self, n: int, timeout: float, what: str,
                        accepted: Callable[[], list[T]]) -> list[T]:
        """Wait until ``accepted()`` holds at least ``n`` items; return a copy of it.

        Raises ``TimeoutError`` naming what did arrive and the last requests (their
        ``_RECENT`` fields).
        """
        deadline = time.monotonic() + timeout
        while len(accepted()) < n:
            if time.monotonic() >= deadline:
                recent = [tuple(getattr(r, name) for name in self._RECENT)
                          for r in self.requests[-5:]]
                raise TimeoutError(
                    f"{self._NAME}: expected >= {n} {what} within {timeout}s, got "
                    f"{len(accepted())}: {self.texts()!r}; {len(self.requests)} {self._CALLS}, "
                    f"last ({', '.join(self._RECENT)}): {recent!r}"
                )
            await asyncio.sleep(0.01)
        return list(accepted())

    # -- faults --------------------------------------------------------------------------

    def _next_fault(self) -> F | None:
        """The next queued fault, else (with ``fail_ratio``) a random one."""
        if self.faults:
            return self.faults.popleft()
        return self._random_fault()

    def _random_fault(self) -> F | None:
        """With probability ``fail_ratio``: a proxy's HTML 5xx, ``cut_before``,
        ``cut_after`` or a 429, one in four each."""
        if self.fail_ratio > 0 and self.rng.random() < self.fail_ratio:
            choice = self.rng.randrange(4)
            if choice == 0:
                return self._random_server_error()
            if choice == 1:
                return self._fault_type.cut_before()
            if choice == 2:
                return self._fault_type.cut_after()
            return self._random_rate_limit()
        return None

    def _random_server_error(self) -> F:
        raise NotImplementedError

    def _random_rate_limit(self) -> F:
        raise NotImplementedError

    @staticmethod
    def _respond(code: int, body: dict[str, Any] | str | None, content_type: str = JSON,
                 headers: dict[str, str] | None = None) -> web.Response:
        text = json.dumps(body) if isinstance(body, dict) else (body or "")
        return web.Response(status=code, text=text, content_type=content_type, headers=headers)

    @staticmethod
    def _cut(request: web.Request) -> web.Response:
        """Close the TCP connection; aiohttp then fails to write the returned response and
        drops it quietly (no error log), so the client sees a disconnect."""
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)

    # -- inspection and steering over HTTP -----------------------------------------------

    async def _get_ledger(self, request: web.Request) -> web.Response:
        return web.json_response(self.texts())

    async def _get_requests(self, request: web.Request) -> web.Response:
        """Every request answered so far (its record as JSON)."""
        return web.json_response([dataclasses.asdict(r) for r in self.requests])

    def _fault_queues(self) -> dict[str, collections.deque[F]]:
        """The ``_control`` keys that append faults, and their queues."""
        return {"faults": self.faults}

    def _check_control(self, spec: dict[str, Any]) -> None:
        """Raise ValueError for a ``_control`` spec this fake refuses (answered 400)."""

    def _apply_control(self, spec: dict[str, Any]) -> None:
        """Apply this fake's own ``_control`` keys."""

    def _control_state(self) -> dict[str, Any]:
        """What ``_control`` answers after ``delay``, ``fail_ratio`` and
        ``reject_credentials``."""
        return {}

    async def _control(self, request: web.Request) -> web.Response:
        """Steer a running fake. JSON keys, all optional: ``delay`` (s), ``fail_ratio``,
        ``seed`` (reseeds the rng), ``reject_credentials`` (bool), the fake's own
        (:meth:`_apply_control`), ``faults`` (list of :meth:`Fault.from_json` specs,
        appended; and the other queues of :meth:`_fault_queues`), ``clear_faults`` (bool:
        empties them all). Answers the resulting state (400 ``{"error": …}`` for a bad
        spec, then nothing changes)."""
        queues = self._fault_queues()
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise ValueError("expected a JSON object")
            new_faults = {key: [self._fault_type.from_json(f) for f in spec.get(key, [])]
                          for key in queues}
            self._check_control(spec)
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if "delay" in spec:
            self.delay = float(spec["delay"])
        if "fail_ratio" in spec:
            self.fail_ratio = float(spec["fail_ratio"])
        if "seed" in spec:
            self.rng.seed(spec["seed"])
        if "reject_credentials" in spec:
            self.reject_credentials(bool(spec["reject_credentials"]))
        self._apply_control(spec)
        if spec.get("clear_faults"):
            for queue in queues.values():
                queue.clear()
        for key, queue in queues.items():
            queue.extend(new_faults[key])
        return web.json_response({
            "delay": self.delay,
            "fail_ratio": self.fail_ratio,
            "reject_credentials": self._reject_credentials,
            **self._control_state(),
        })


# -- standalone use ----------------------------------------------------------------------


def command_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of ``python -m <module>``, with ``--host`` and ``--port``."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    return parser


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (call it inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a standalone server's ``main`` to its end (a KeyboardInterrupt ends it quietly)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main)
    sys.stdout.flush()


async def serve_fake(build: Callable[[], FakeService[Any, Any]], host: str, port: int,
                     url_name: str) -> None:
    """Start the fake ``build()`` makes, print ``<url_name>=<base URL>`` (flushed), serve
    until SIGTERM/SIGINT, close it and print ``LEDGER <json list of texts>``."""
    fake = build()
    stop = stop_event()
    url = await fake.start(host, port)
    print(f"{url_name}={url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.close()
        print("LEDGER " + json.dumps(fake.texts()), flush=True)


def run_fake(parser: argparse.ArgumentParser, argv: list[str] | None, url_name: str,
             build: Callable[[argparse.Namespace], FakeService[Any, Any]]) -> None:
    """Finish ``parser`` (:func:`command_parser` plus the fake's own flags) with
    ``--fail-ratio`` and ``--seed``, parse ``argv`` and serve ``build(args)`` (see
    :func:`serve_fake`) until SIGTERM/SIGINT."""
    parser.add_argument("--fail-ratio", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    run(serve_fake(lambda: build(args), args.host, args.port, url_name))
