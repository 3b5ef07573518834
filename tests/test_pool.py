"""The task pool alone: bounded, keyed, every failure reaches the handler, close gives a grace
period and then cancels, shielded work runs to its end."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

import pytest

from bot.pool import TaskPool


async def test_bounded_and_keyed() -> None:
    release = asyncio.Event()
    pool: TaskPool[int] = TaskPool(2)
    pool.spawn(1, release.wait())
    pool.spawn(2, release.wait())
    assert (len(pool), pool.free, sorted(pool.keys()), 1 in pool) == (2, 0, [1, 2], True)
    with pytest.raises(RuntimeError, match="no room"):
        pool.spawn(3, release.wait())  # the coroutine is closed: no "never awaited" warning
    release.set()
    await pool.wait()
    assert (len(pool), pool.free) == (0, 2)
    pool.spawn(1, release.wait())
    with pytest.raises(RuntimeError, match="no room"):
        pool.spawn(1, release.wait())  # a key already running
    await pool.wait()


async def test_a_failure_reaches_the_handler_and_the_task_leaves_the_pool() -> None:
    seen: list[tuple[str, BaseException]] = []
    left: list[int] = []
    pool: TaskPool[str] = TaskPool(3, on_error=lambda task, exc: seen.append((task.get_name(),
                                                                             exc)))
    pool.on_done = lambda: left.append(len(pool))

    async def boom() -> None:
        raise ValueError("bad post")

    pool.spawn("a", boom(), name="post-a")
    await pool.wait()
    await asyncio.sleep(0)
    assert [(name, str(exc)) for name, exc in seen] == [("post-a", "bad post")]
    assert left == [0], "on_done runs after the task has left the pool"
    gc.collect()  # nothing left for "Task exception was never retrieved" (warnings are errors)


async def test_the_default_handler_logs(caplog: pytest.LogCaptureFixture) -> None:
    pool: TaskPool[int] = TaskPool(1)

    async def boom() -> None:
        raise KeyError("x")

    with caplog.at_level(logging.ERROR, logger="bot.pool"):
        pool.spawn(1, boom(), name="post-1")
        await pool.wait()
        await asyncio.sleep(0)
    assert "background_task_failed task=post-1" in caplog.text
    assert caplog.records[0].exc_info is not None


async def test_close_lets_quick_tasks_finish_and_cancels_the_rest_after_the_grace() -> None:
    finished: list[str] = []
    cancelled: list[str] = []
    errors: list[BaseException] = []
    pool: TaskPool[str] = TaskPool(4, on_error=lambda task, exc: errors.append(exc))

    async def work(name: str, seconds: float) -> None:
        try:
            await asyncio.sleep(seconds)
            finished.append(name)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    pool.spawn("quick", work("quick", 0.05))
    pool.spawn("slow", work("slow", 30))
    started = time.monotonic()
    assert await pool.close(grace=0.3) == 1
    assert 0.25 <= time.monotonic() - started < 2
    assert (finished, cancelled, errors) == (["quick"], ["slow"], [])
    assert len(pool) == 0
    assert await TaskPool(1).close(grace=5) == 0  # nothing running: returns at once


async def test_shielded_work_runs_to_its_end_through_close() -> None:
    written: list[str] = []
    pool: TaskPool[int] = TaskPool(1)

    async def write_down() -> str:
        await asyncio.sleep(0.3)
        written.append("answer")
        return "done"

    async def post() -> Any:
        return await pool.shield(write_down(), name="settle-1")

    task = pool.spawn(1, post())
    await asyncio.sleep(0.05)
    assert await pool.close(grace=0.05) == 1  # cancelled while writing down its answer ...
    assert written == ["answer"]  # ... which was finished all the same
    assert task.cancelled()

    pool = TaskPool(1)
    assert await pool.shield(write_down()) == "done"  # not cancelled: the value comes back
