"""A bounded pool of background tasks, keyed, whose every failure reaches a handler.

``asyncio.create_task`` alone keeps only a weak reference to its task, and an exception nobody
retrieves ends as "Task exception was never retrieved" at garbage collection. The pool keeps
each task until it ends, hands its exception to ``on_error`` (by default: logged), refuses to
hold more than ``limit`` tasks at once, and on :meth:`TaskPool.close` gives those still running
a grace period, then cancels them; work shielded with :meth:`TaskPool.shield` is awaited to
its end either way.

Tasks are keyed (a post's id): the dispatcher tells the store which posts are in flight, so
that a claim never picks one of them again. ``on_done`` runs after a task has left the pool, so
whoever it wakes sees the slot free.

The pool holds no queue: work waits in SQLite, and the dispatcher claims only as many posts as
:attr:`TaskPool.free` says. (aiojobs' ``Scheduler`` was the other candidate; its memory-only
pending queue, unkeyed jobs and awaited ``spawn`` fit this less well than these few lines.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Hashable, KeysView
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def log_task_exception(task: asyncio.Task[Any], exc: BaseException) -> None:
    log.error("background_task_failed task=%s", task.get_name(), exc_info=exc)


class TaskPool(Generic[K]):
    """At most ``limit`` tasks, one per key; ``on_error`` gets each one's exception, and
    ``on_done`` is called each time one ends (after it has left the pool)."""

    def __init__(self, limit: int, *,
                 on_error: Callable[[asyncio.Task[Any], BaseException], None] = log_task_exception,
                 on_done: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self.on_error = on_error
        self.on_done = on_done
        self._tasks: dict[K, asyncio.Task[Any]] = {}
        self._shielded: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, key: object) -> bool:
        return key in self._tasks

    def keys(self) -> KeysView[K]:
        """The keys of the tasks running, as a live view."""
        return self._tasks.keys()

    @property
    def free(self) -> int:
        return self.limit - len(self._tasks)

    def spawn(self, key: K, coro: Coroutine[Any, Any, Any], *, name: str | None = None
              ) -> asyncio.Task[Any]:
        """Start ``coro`` as a task under ``key``. The caller checks :attr:`free` first: a
        full pool, or a key already running, is a bug, and raises."""
        if self.free <= 0 or key in self._tasks:
            coro.close()
            raise RuntimeError(f"task pool: no room for {key!r} "
                               f"({len(self._tasks)}/{self.limit} running)")
        task = asyncio.create_task(coro, name=name)
        self._tasks[key] = task
        task.add_done_callback(lambda t: self._finished(key, t))
        return task

    def _finished(self, key: K, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.on_error(task, exc)
        if self.on_done is not None:
            self.on_done()

    async def shield(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> T:
        """Run ``coro`` to its end even if the task awaiting it is cancelled (that task
        then waits for it before it unwinds), and even through :meth:`close`: for work
        that must not be cut half-way, such as writing down an answer that came in."""
        task = asyncio.create_task(coro, name=name)
        self._shielded.add(task)
        task.add_done_callback(self._shielded.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                await asyncio.wait([task])
            raise

    async def wait(self) -> None:
        """Wait until every task running now has ended."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    async def close(self, grace: float) -> int:
        """Give the running tasks up to ``grace`` seconds, then cancel those left and wait
        for them to unwind, and for the work they shielded. Returns how many were cancelled."""
        still: set[asyncio.Task[Any]] = set()
        if self._tasks:
            _, still = await asyncio.wait(list(self._tasks.values()), timeout=grace)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
        if self._shielded:
            await asyncio.gather(*self._shielded, return_exceptions=True)
        return len(still)
