"""A burst of identical requests costs one evaluation, whatever happens to it.

Every evaluation here is gated by an ``asyncio.Event``, so the test decides when
it finishes: no sleeps, no timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from clipper.common.errors import ModelError, Unavailable
from clipper.frontend.cache import LRUCache, NullCache, PredictionCache, cache_key

KEY = cache_key("m", "1", np.arange(4.0))


class GatedModel:
    """Counts evaluations; each one waits for ``release`` and then answers or raises."""

    def __init__(self, result: np.ndarray | Exception | None = None) -> None:
        self.calls = 0
        self.cancelled = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.result = np.array([1.0, 2.0]) if result is None else result

    def compute(self) -> Callable[[], Awaitable[np.ndarray]]:
        async def evaluate() -> np.ndarray:
            self.calls += 1
            self.started.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            if isinstance(self.result, Exception):
                raise self.result
            return self.result

        return evaluate


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


def burst(cache: PredictionCache, model: GatedModel, n: int) -> list[asyncio.Task]:
    return [asyncio.create_task(cache.get_or_compute(KEY, model.compute())) for _ in range(n)]


async def test_a_burst_of_identical_requests_costs_one_evaluation() -> None:
    cache, model = LRUCache(1 << 20), GatedModel()
    tasks = burst(cache, model, 50)
    await model.started.wait()
    model.release.set()
    results = await asyncio.gather(*tasks)
    assert model.calls == 1
    for value, _ in results:
        np.testing.assert_array_equal(value, [1.0, 2.0])
    assert sorted(shared for _, shared in results) == [False] + [True] * 49
    stats = cache.stats
    assert (stats.misses, stats.coalesced, stats.hits) == (1, 49, 0)
    # ...and the result is cached: the next request is a plain hit.
    value, shared = await cache.get_or_compute(KEY, model.compute())
    assert shared
    assert model.calls == 1
    assert cache.stats.hits == 1


async def test_different_keys_do_not_coalesce() -> None:
    cache, model = LRUCache(1 << 20), GatedModel()
    other = cache_key("m", "2", np.arange(4.0))
    tasks = [
        asyncio.create_task(cache.get_or_compute(KEY, model.compute())),
        asyncio.create_task(cache.get_or_compute(other, model.compute())),
    ]
    await settle()
    model.release.set()
    await asyncio.gather(*tasks)
    assert model.calls == 2


async def test_a_failure_reaches_every_waiter_and_nothing_is_cached() -> None:
    cache, model = LRUCache(1 << 20), GatedModel(ModelError("boom"))
    tasks = burst(cache, model, 5)
    await model.started.wait()
    model.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert model.calls == 1
    assert all(isinstance(r, ModelError) and r.message == "boom" for r in results)
    assert cache.stats.entries == 0
    # The next request evaluates afresh (and succeeds).
    model.result = np.array([3.0])
    value, shared = await cache.get_or_compute(KEY, model.compute())
    assert not shared
    assert model.calls == 2
    np.testing.assert_array_equal(value, [3.0])


async def test_cancelling_the_first_caller_does_not_cancel_the_others() -> None:
    cache, model = LRUCache(1 << 20), GatedModel()
    first, *others = burst(cache, model, 4)
    await model.started.wait()
    first.cancel()
    await settle()
    assert first.cancelled()
    assert model.cancelled == 0
    model.release.set()
    results = await asyncio.gather(*others)
    assert model.calls == 1
    assert all(value[0] == 1.0 for value, _ in results)
    assert cache.stats.entries == 1


async def test_the_result_is_cached_even_if_only_the_first_caller_was_left() -> None:
    cache, model = LRUCache(1 << 20), GatedModel()
    first, second = burst(cache, model, 2)
    await model.started.wait()
    second.cancel()
    await settle()
    model.release.set()
    value, shared = await first
    assert not shared
    assert value[0] == 1.0
    assert cache.stats.entries == 1


async def test_when_every_caller_leaves_the_evaluation_is_cancelled() -> None:
    cache, model = LRUCache(1 << 20), GatedModel()
    tasks = burst(cache, model, 3)
    await model.started.wait()
    for task in tasks:
        task.cancel()
    await settle()
    assert model.cancelled == 1
    assert cache.stats.entries == 0
    # A new request starts a fresh evaluation instead of joining the cancelled one.
    model.release.set()
    value, shared = await cache.get_or_compute(KEY, model.compute())
    assert not shared
    assert model.calls == 2
    assert value[0] == 1.0


async def test_an_evaluation_cancelled_from_elsewhere_is_unavailable_to_waiters() -> None:
    cache = LRUCache(1 << 20)
    loop = asyncio.get_running_loop()
    downstream: asyncio.Future[np.ndarray] = loop.create_future()

    async def compute() -> np.ndarray:
        return await downstream

    tasks = [asyncio.create_task(cache.get_or_compute(KEY, compute)) for _ in range(3)]
    await settle()
    downstream.cancel()  # e.g. the batcher shutting down
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results), results


async def test_a_disabled_cache_evaluates_every_request() -> None:
    cache, model = NullCache(), GatedModel()
    tasks = burst(cache, model, 5)
    await settle()
    model.release.set()
    results = await asyncio.gather(*tasks)
    assert model.calls == 5
    assert not any(shared for _, shared in results)
    await cache.put(KEY, np.ones(2))
    assert await cache.get(KEY) is None
    assert cache.stats.misses == 6
    assert cache.stats.hit_ratio == 0.0
    assert not cache.enabled


@pytest.mark.filterwarnings("error")
async def test_failures_leave_no_unretrieved_exception_warnings() -> None:
    cache, model = LRUCache(1 << 20), GatedModel(ModelError("boom"))
    tasks = burst(cache, model, 2)
    await model.started.wait()
    tasks[0].cancel()
    await settle()
    model.release.set()
    with pytest.raises(ModelError):
        await tasks[1]
    assert len(cache._inflight) == 0


async def test_computed_results_are_stored_as_read_only_copies() -> None:
    cache = LRUCache(1 << 20)
    batch = np.zeros((8, 3))  # a row of a batch's output, as the batcher returns it

    async def compute() -> np.ndarray:
        return batch[5]

    value, _ = await cache.get_or_compute(KEY, compute)
    batch[5] = 9.0  # the batch buffer is reused
    assert not value.flags.writeable
    cached = await cache.get(KEY)
    assert cached is not None
    assert cached.tolist() == [0.0, 0.0, 0.0]
    assert cached.base is None
