"""Chunks in flight: joined by identical rows, cancelled by their last waiter, filling
the cache when they land. Plain futures stand for chunks: no timing."""

from __future__ import annotations

import asyncio
import gc

import numpy as np

from clipper.common.errors import ModelError
from clipper.frontend.cache import LRUCache, NullCache, cache_key, cache_keys
from clipper.frontend.cache.lru import entry_size

ROWS = np.arange(12.0).reshape(3, 4)


async def settle() -> None:
    """Let landed chunks fill the cache: their done callbacks run, then the one
    ``_store`` the first of them scheduled."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_misses_register_one_flight_that_identical_lookups_join_and_that_fills() -> None:
    cache = LRUCache(1 << 20)
    keys = cache_keys("m", "1", ROWS)
    assert keys == [cache_key("m", "1", row).packed for row in ROWS]
    gc.collect()
    assert not any(gc.is_tracked(key) for key in keys)  # no work for the collector
    assert await cache.lookup(keys) == [None, None, None]
    future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
    flight = cache.expect(keys, future)
    joined = await cache.lookup([keys[2], keys[0]])
    assert joined == [(flight, 2), (flight, 0)]
    future.set_result(ROWS * 10)
    await settle()  # the done callback runs, then the fill
    hits = await cache.lookup(keys)
    np.testing.assert_array_equal(np.stack(hits), ROWS * 10)  # type: ignore[arg-type]
    assert not hits[0].flags.writeable  # type: ignore[union-attr]
    stats = cache.stats
    assert (stats.misses, stats.coalesced, stats.hits) == (3, 2, 3)


async def test_the_last_waiter_to_leave_cancels_the_chunk() -> None:
    cache = LRUCache(1 << 20)
    keys = cache_keys("m", "1", ROWS)
    future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
    flight = cache.expect(keys, future)
    flight.join()
    flight.leave()
    assert not future.cancelled()  # someone still waits
    flight.leave()
    assert future.cancelled()
    await settle()
    assert await cache.lookup(keys[:1]) == [None]  # forgotten, nothing stored


async def test_a_failed_flight_stores_nothing_and_is_forgotten() -> None:
    cache = LRUCache(1 << 20)
    keys = cache_keys("m", "1", ROWS)
    future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
    cache.expect(keys, future)
    future.set_exception(ModelError("boom"))
    future.exception()
    await settle()
    assert await cache.lookup(keys) == [None, None, None]
    assert cache.stats.entries == 0


async def test_a_disabled_cache_never_joins_nor_stores() -> None:
    cache = NullCache()
    keys = cache_keys("m", "1", ROWS)
    future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
    cache.expect(keys, future)
    assert await cache.lookup(keys) == [None, None, None]
    future.set_result(ROWS)
    await settle()
    assert await cache.lookup(keys) == [None, None, None]


async def test_landed_chunks_stay_within_the_byte_bound_and_evict_the_oldest() -> None:
    """Rows of 4 scores: each chunk is stored as one block with a row view per
    entry, and a block's bytes count until its last row leaves, so evicting the
    oldest row frees only its entry's overhead while the block lives on."""
    from clipper.frontend.cache.lru import ENTRY_OVERHEAD

    block_bytes = 3 * 4 * 8  # a chunk's 3 rows of 4 float64 scores
    row = ENTRY_OVERHEAD + len(cache_keys("m", "1", np.zeros((1, 4)))[0])  # and its key
    cache = LRUCache(5 * (4 * 8 + row))  # room for 5 rows stored one by one
    loop = asyncio.get_running_loop()
    for start in (0, 100):  # two chunks of 3 rows: 6 rows, room for 5
        rows = np.arange(start, start + 12.0).reshape(3, 4)
        future: asyncio.Future[np.ndarray] = loop.create_future()
        cache.expect(cache_keys("m", "1", rows), future)
        future.set_result(rows * 2)
        await settle()
    stats = cache.stats
    # Evicting the oldest row freed its entry, not its block's 32: the next oldest went too.
    assert (stats.entries, stats.evictions) == (4, 2)
    assert stats.bytes == 2 * block_bytes + 4 * row <= cache.max_bytes
    first = cache_keys("m", "1", np.arange(12.0).reshape(3, 4))
    assert await cache.lookup(first[:2]) == [None, None]  # the oldest rows went first
    (kept,) = await cache.lookup(first[2:])
    np.testing.assert_array_equal(kept, np.arange(8.0, 12.0) * 2)  # type: ignore[arg-type]


async def test_a_1d_chunk_fills_scalars_that_neither_alias_nor_change() -> None:
    """Class labels: each row is stored as the numpy scalar indexing gives (what
    the row is without the cache), not as an array copied per row; reusing or
    changing the chunk's buffer afterwards changes no stored value."""
    cache = LRUCache(1 << 20)
    keys = cache_keys("m", "1", ROWS)
    future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
    cache.expect(keys, future)
    labels = np.array([7, 8, 9])
    future.set_result(labels)
    await settle()
    labels[:] = -1  # the buffer reused
    hits = await cache.lookup(keys)
    assert hits == [7, 8, 9]
    assert all(type(hit) is np.int64 for hit in hits)
    assert [type(label) for label in np.array([7, 8, 9])] == [type(hit) for hit in hits]


async def land_together(cache: LRUCache, chunks: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Chunks whose futures resolve in one go, as a model batch's chunks do."""
    loop = asyncio.get_running_loop()
    futures = []
    for rows, _ in chunks:
        futures.append(loop.create_future())
        cache.expect(cache_keys("m", "1", rows), futures[-1])
    for future, (_, outputs) in zip(futures, chunks, strict=True):
        future.set_result(outputs)
    await settle()


async def test_chunks_of_one_batch_fill_the_cache_as_one_chunk() -> None:
    """A batch of single-row requests lands as many chunks: the cache is filled once
    for them all, so their rows of scores share one block."""
    cache = LRUCache(1 << 20)
    rows = np.arange(8.0)[:, None]
    chunks = [(rows[i : i + 1], rows[i : i + 1] * [[1.0, 2.0]]) for i in range(8)]
    await land_together(cache, chunks)
    found = await cache.lookup(cache_keys("m", "1", rows))
    assert len({id(row.base) for row in found}) == 1  # type: ignore[union-attr]
    np.testing.assert_array_equal(np.stack(found), rows * [[1.0, 2.0]])  # type: ignore[arg-type]
    assert cache.stats.entries == 8


async def test_chunks_of_other_kinds_or_with_a_key_twice_are_stored_apart() -> None:
    cache = LRUCache(1 << 20)
    first, second = np.zeros((1, 1)), np.ones((1, 1))
    await land_together(
        cache,
        [
            (first, np.array([[1.0, 2.0]])),  # scores
            (second, np.array([7])),  # a label: another kind
            (first, np.array([[3.0, 4.0]])),  # the first row again, evaluated again
        ],
    )
    (one,), (two,) = (
        await cache.lookup(cache_keys("m", "1", first)),
        await cache.lookup(cache_keys("m", "1", second)),
    )
    np.testing.assert_array_equal(one, [3.0, 4.0])  # the later chunk's output
    assert two == 7
    stats = cache.stats
    assert stats.entries == 2
    assert stats.bytes == sum(entry_size(k, v) for k, v in cache._entries.items())
