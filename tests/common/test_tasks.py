"""Supervised tasks: a crash is logged with its traceback, fails the held work, and
restarts or turns the registry unhealthy; cancellation and normal returns are not crashes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from clipper.common.tasks import Backoff, TaskRegistry, spawn, supervise
from clipper.testing.timeouts import scaled

FAST = Backoff(first_s=0.001, max_s=0.002, healthy_after_s=60)


async def test_a_crash_is_logged_with_its_traceback_and_the_task_restarts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    held: list[BaseException] = []
    second_run = asyncio.Event()

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("boom")
        second_run.set()
        await asyncio.Event().wait()

    registry = TaskRegistry()
    task = supervise("worker", work, registry=registry, on_crash=held.append, backoff=FAST)
    await asyncio.wait_for(second_run.wait(), scaled(10))
    assert [str(e) for e in held] == ["boom"]
    assert registry.crashes == {"worker": 1}
    assert registry.healthy
    record = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "worker" in record.getMessage()
    assert record.exc_info is not None
    assert "boom" in str(record.exc_info[1])
    await task.stop()
    assert task.done()
    assert registry.crashes == {"worker": 1}  # stopping is not a crash


async def test_without_restart_a_dead_task_is_reported_to_readiness() -> None:
    async def work() -> None:
        raise ValueError("bad state")

    registry = TaskRegistry()
    task = supervise("follower", work, registry=registry, restart=False)
    await task.wait()
    assert task.dead
    assert not registry.healthy
    assert registry.failures == {"follower": "ValueError: bad state"}
    registry.forget("follower")
    assert registry.healthy


async def test_max_crashes_gives_up_after_that_many() -> None:
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        raise OSError("again")

    registry = TaskRegistry()
    task = supervise("flaky", work, registry=registry, backoff=FAST, max_crashes=3)
    await asyncio.wait_for(task.wait(), scaled(10))
    assert calls == 3
    assert task.dead
    assert "flaky" in registry.failures


async def test_a_task_that_returns_is_finished_not_restarted() -> None:
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1

    task = supervise("once", work, backoff=FAST)
    await task.wait()
    assert calls == 1
    assert not task.dead


def test_backoff_doubles_and_resets_after_a_healthy_run() -> None:
    backoff = Backoff(first_s=1, max_s=8, healthy_after_s=10)
    assert [backoff.delay(0.5) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert backoff.delay(10) == 1  # ran long enough: the doubling starts over
    assert backoff.delay(1) == 2


async def test_spawned_work_that_fails_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def close() -> None:
        raise ConnectionError("channel broke")

    registry = TaskRegistry()
    task = spawn(close(), "close-replica", registry)
    with pytest.raises(ConnectionError):
        await task
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert registry.crashes == {"close-replica": 1}
    assert any("close-replica" in r.getMessage() for r in caplog.records)
