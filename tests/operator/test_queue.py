"""The reconcile queue: deduplicated, delayed keys, one reconcile per key at a time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from clipper.operator.queue import ReconcileQueue
from clipper.testing.waiting import polls


class Recorder:
    """A reconcile that records its calls and answers what ``answer`` says."""

    def __init__(self, answer: Callable[[str, int], float | None] = lambda key, n: None) -> None:
        self.calls: list[tuple[str, float]] = []
        self.running: set[str] = set()
        self.overlaps = 0
        self.answer = answer
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, key: str) -> float | None:
        if key in self.running:
            self.overlaps += 1
        self.running.add(key)
        self.calls.append((key, asyncio.get_running_loop().time()))
        try:
            await self.gate.wait()
            return self.answer(key, sum(1 for k, _ in self.calls if k == key))
        finally:
            self.running.discard(key)

    def names(self) -> list[str]:
        return [key for key, _ in self.calls]


async def eventually(condition: Callable[[], bool]) -> None:
    async for _ in polls(10, interval=0.005):
        if condition():
            return
    pytest.fail("condition not met")


async def run_until(
    queue: ReconcileQueue[str], recorder: Recorder, done: Callable[[], bool], workers: int = 2
) -> None:
    task = asyncio.create_task(queue.run(recorder, workers))
    try:
        async for _ in polls(10, interval=0.005):
            if done():
                return
        pytest.fail(f"not done; calls: {recorder.calls}")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_keys_added_several_times_before_they_run_run_once() -> None:
    queue: ReconcileQueue[str] = ReconcileQueue()
    recorder = Recorder()
    for _ in range(5):
        queue.add("a")
    queue.add("b")
    task = asyncio.create_task(queue.run(recorder, workers=2))
    try:
        await eventually(lambda: len(recorder.calls) >= 2 and len(queue) == 0)
        await asyncio.sleep(0.05)  # time for a duplicate to run, were there one
        queue.add("c")  # the queue still runs keys: so no duplicate ran above
        await eventually(lambda: "c" in recorder.names())
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(recorder.names()) == ["a", "b", "c"]


async def test_the_earliest_requested_time_wins() -> None:
    queue: ReconcileQueue[str] = ReconcileQueue()
    recorder = Recorder()
    queue.add("late", 3600)
    queue.add("soon", 3600)
    queue.add("soon", 0)
    await run_until(queue, recorder, lambda: "soon" in recorder.names())
    assert recorder.names() == ["soon"]
    assert len(queue) == 1  # "late" still waits


async def test_a_key_added_while_it_runs_runs_again_after_never_alongside() -> None:
    queue: ReconcileQueue[str] = ReconcileQueue()
    recorder = Recorder()
    recorder.gate.clear()
    queue.add("a")
    task = asyncio.create_task(queue.run(recorder, workers=4))
    try:
        await eventually(lambda: bool(recorder.running))
        queue.add("a")
        queue.add("a")
        queue.add("b")  # idle workers are there to take keys: this one runs at once
        await eventually(lambda: "b" in recorder.names())
        await asyncio.sleep(0.05)
        assert recorder.names() == ["a", "b"]  # "a" is busy: not started a second time
        recorder.gate.set()
        await eventually(lambda: recorder.names().count("a") >= 2)
        await asyncio.sleep(0.05)  # time for a third run of "a", were there one
        queue.add("c")  # the queue still runs keys: so none ran above
        await eventually(lambda: "c" in recorder.names())
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert recorder.names() == ["a", "b", "a", "c"]
    assert recorder.overlaps == 0


async def test_a_reconcile_asks_when_to_run_again() -> None:
    queue: ReconcileQueue[str] = ReconcileQueue()
    recorder = Recorder(lambda key, n: 0.05 if n < 3 else None)
    queue.add("a")
    await run_until(queue, recorder, lambda: len(recorder.calls) == 3)
    times = [t for _, t in recorder.calls]
    assert all(later - earlier >= 0.05 for earlier, later in itertools.pairwise(times))


async def test_failures_are_retried_with_a_growing_back_off_that_success_resets() -> None:
    outcomes = iter([ValueError(), ValueError(), None, ValueError(), None])

    def answer(key: str, n: int) -> float | None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome
        return 0.0 if n == 3 else None

    queue: ReconcileQueue[str] = ReconcileQueue(backoff=0.04, backoff_max=1.0)
    recorder = Recorder(answer)
    queue.add("a")
    failures = []
    real = recorder.__call__

    async def watching(key: str) -> float | None:
        failures.append(queue.failures(key))
        return await real(key)

    task = asyncio.create_task(queue.run(watching, workers=1))
    try:
        await eventually(lambda: len(recorder.calls) >= 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    t = [time for _, time in recorder.calls]
    assert t[1] - t[0] >= 0.04  # first failure: the base delay
    assert t[2] - t[1] >= 0.08  # second in a row: doubled
    assert t[4] - t[3] >= 0.04
    assert failures == [0, 1, 2, 0, 1]  # the success reset the count


async def test_one_failing_key_does_not_hold_up_the_others() -> None:
    def answer(key: str, n: int) -> float | None:
        if key == "bad":
            raise RuntimeError("always")
        return None

    queue: ReconcileQueue[str] = ReconcileQueue(backoff=10.0)
    recorder = Recorder(answer)
    queue.add("bad")
    queue.add("good")
    await run_until(queue, recorder, lambda: "good" in recorder.names(), workers=1)
    assert recorder.names().count("bad") == 1
