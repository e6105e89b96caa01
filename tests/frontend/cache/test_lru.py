"""LRU order, the byte bound, read-only copies, TTL with an injected clock."""

from __future__ import annotations

import asyncio
import gc

import numpy as np
import pytest

from clipper.frontend.cache import CacheKey, LRUCache, cache_key, cache_keys
from clipper.frontend.cache.lru import ENTRY_OVERHEAD, entry_size


async def settle() -> None:
    """Let landed chunks fill the cache: their done callbacks run, then the one
    ``_store`` the first of them scheduled."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def key(i: int, model: str = "m", version: str = "1") -> CacheKey:
    return cache_key(model, version, np.array([i]))


def value(nbytes: int = 800, fill: float = 1.0) -> np.ndarray:
    return np.full(nbytes // 8, fill)


KEY = len(key(0).packed)
"""A key's length: ``key(i)``'s row is 8 bytes, kept whole in the key."""
ENTRY = entry_size(key(0).packed, value())


async def test_a_miss_is_none_and_a_repeat_is_a_hit() -> None:
    cache = LRUCache(max_bytes=10 * ENTRY)
    assert await cache.get(key(1)) is None
    await cache.put(key(1), value(fill=7.0))
    got = await cache.get(key(1))
    assert got is not None
    np.testing.assert_array_equal(got, value(fill=7.0))
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)
    assert stats.bytes == ENTRY == 800 + ENTRY_OVERHEAD + KEY
    assert stats.hit_ratio == 0.5


async def test_evicts_least_recently_used_not_first_in() -> None:
    cache = LRUCache(max_bytes=3 * ENTRY)
    for i in range(3):
        await cache.put(key(i), value(fill=i))
    assert await cache.get(key(0)) is not None  # 0 is now the most recently used
    await cache.put(key(3), value())
    assert await cache.get(key(1)) is None  # the least recently used went
    assert await cache.get(key(0)) is not None
    assert await cache.get(key(2)) is not None
    assert await cache.get(key(3)) is not None
    assert cache.stats.evictions == 1


async def test_bytes_stay_within_the_bound_for_mixed_sizes() -> None:
    cache = LRUCache(max_bytes=20_000)
    rng = np.random.default_rng(0)
    for i in range(300):
        await cache.put(key(i), np.zeros(int(rng.integers(1, 400))))
        assert cache.stats.bytes <= 20_000
    stats = cache.stats
    assert stats.evictions > 0
    assert stats.entries == 300 - stats.evictions
    # The accounting matches what is really stored.
    assert stats.bytes == sum(entry_size(k, value) for k, value in cache._entries.items())


async def test_a_value_larger_than_the_cache_is_not_stored() -> None:
    cache = LRUCache(max_bytes=2 * ENTRY)
    await cache.put(key(1), value())
    await cache.put(key(2), value(nbytes=10 * ENTRY))
    assert await cache.get(key(2)) is None
    assert await cache.get(key(1)) is not None  # and it evicted nothing
    assert cache.stats.evictions == 0


async def test_put_replaces_and_accounts_the_new_size() -> None:
    cache = LRUCache(max_bytes=10 * ENTRY)
    await cache.put(key(1), value(nbytes=80))
    await cache.put(key(1), value(nbytes=800, fill=2.0))
    got = await cache.get(key(1))
    assert got is not None
    assert got[0] == 2.0
    assert cache.stats.entries == 1
    assert cache.stats.bytes == ENTRY


async def test_stored_values_are_read_only_copies() -> None:
    cache = LRUCache(max_bytes=10 * ENTRY)
    batch = np.zeros((4, 100))
    await cache.put(key(1), batch[2])
    batch[2, 0] = 99.0  # the caller keeps using its array
    got = await cache.get(key(1))
    assert got is not None
    assert got[0] == 0.0
    assert not got.flags.writeable
    assert got.base is None  # does not keep the whole batch alive
    with pytest.raises(ValueError, match="read-only"):
        got[0] = 1.0


async def test_text_values_count_their_text() -> None:
    cache = LRUCache(max_bytes=1 << 20)
    text = np.array([b"x" * 10_000], dtype=object)
    await cache.put(key(1), text)
    assert cache.stats.bytes > 10_000


async def test_ttl_expires_entries_by_the_injected_clock() -> None:
    now = [1000.0]
    cache = LRUCache(max_bytes=10 * ENTRY, ttl_seconds=5.0, clock=lambda: now[0])
    await cache.put(key(1), value())
    now[0] += 4.9
    assert await cache.get(key(1)) is not None
    now[0] += 0.1
    assert await cache.get(key(1)) is None
    stats = cache.stats
    assert (stats.expirations, stats.entries, stats.bytes, stats.misses) == (1, 0, 0, 1)


async def test_ttl_counts_from_the_last_store_not_the_last_read() -> None:
    now = [0.0]
    cache = LRUCache(max_bytes=10 * ENTRY, ttl_seconds=5.0, clock=lambda: now[0])
    await cache.put(key(1), value())
    now[0] = 3.0
    assert await cache.get(key(1)) is not None
    now[0] = 6.0
    assert await cache.get(key(1)) is None  # reads do not extend a prediction's life


async def test_discard_one_version_or_the_whole_model() -> None:
    cache = LRUCache(max_bytes=100 * ENTRY)
    for i in range(3):
        await cache.put(key(i, "a", "1"), value())
        await cache.put(key(i, "a", "2"), value())
        await cache.put(key(i, "b", "1"), value())
    assert await cache.discard("a", "1") == 3
    assert await cache.get(key(0, "a", "1")) is None
    assert await cache.get(key(0, "a", "2")) is not None
    assert await cache.discard("a") == 3
    assert cache.stats.entries == 3
    assert cache.stats.bytes == 3 * ENTRY
    await cache.clear()
    assert (cache.stats.entries, cache.stats.bytes) == (0, 0)


@pytest.mark.parametrize(("max_bytes", "ttl"), [(0, None), (-1, None), (100, 0.0), (100, -1.0)])
def test_invalid_bounds_are_refused(max_bytes: int, ttl: float | None) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        LRUCache(max_bytes=max_bytes, ttl_seconds=ttl)


async def test_a_full_cache_adds_nothing_to_the_garbage_collectors_work() -> None:
    cache = LRUCache(1 << 20)
    for i in range(200):
        await cache.put(cache_key("m", "1", np.array([float(i)])), np.array([float(i)]))
    key, value = next(iter(cache._entries.items()))
    assert not gc.is_tracked(key)  # untracked from the start, not after a collection
    assert not gc.is_tracked(value)
    assert await cache.get(cache_key("m", "1", np.array([0.0]))) is not None  # found by CacheKey


async def test_storing_rows_leaves_no_object_for_the_collector_to_track() -> None:
    """Every tracked object that outlives its request moves toward the oldest
    generation, and enough of them bring a full collection, which walks the whole
    cache: a stream of unique rows must not leave one behind per row stored."""
    cache = LRUCache(1 << 20)
    rows = np.arange(4000.0).reshape(1000, 4)
    keys = cache_keys("m", "1", rows)
    loop = asyncio.get_running_loop()
    gc.collect()
    gc.disable()
    try:
        before = gc.get_count()[0]
        for start in range(0, 1000, 16):
            chunk = keys[start : start + 16]
            await cache.lookup(chunk)
            future: asyncio.Future[np.ndarray] = loop.create_future()
            cache.expect(chunk, future)
            future.set_result(np.arange(len(chunk)))
            await settle()
        del chunk, future
        grown = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert cache.stats.entries == 1000
    assert grown < 100  # not one per row stored (two, with tuples for keys and entries)


async def land(cache: LRUCache, start: int, count: int, outputs: np.ndarray | None = None) -> None:
    """Rows ``start..start+count`` evaluated as one chunk (class labels unless given)."""
    rows = np.arange(start, start + count, dtype=np.float64)[:, None]
    future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
    cache.expect(cache_keys("m", "1", rows), future)
    future.set_result(np.arange(count) if outputs is None else outputs)
    await settle()  # the fill runs after the future's done callback


ROW_KEY = len(cache_keys("m", "1", np.zeros((1, 1)))[0])
"""The length of a key of ``land``'s rows (one float64, kept whole in the key)."""
ROW = ENTRY_OVERHEAD + ROW_KEY
"""What an entry costs besides its value."""
LABEL = 8 + ROW  # one int64 class label


async def test_a_full_cache_stores_a_landed_row_only_on_its_second_sighting() -> None:
    cache = LRUCache(100 * LABEL + 4096, doorkeeper_bytes=4096)
    for start in range(0, 100, 10):
        await land(cache, start, 10)  # fits: stored at once, as before
    assert (cache.stats.entries, cache.stats.doorkeeper_bytes) == (100, 0)
    await land(cache, 1000, 10)  # does not fit: sighted, not stored
    stats = cache.stats
    assert (stats.entries, stats.evictions, stats.kept_out) == (100, 0, 10)
    assert stats.doorkeeper_bytes == 4096  # set aside within the bound
    assert stats.bytes == 100 * LABEL + 4096 <= stats.max_bytes
    await land(cache, 1000, 10)  # sighted again: stored, the 10 oldest evicted
    stats = cache.stats
    assert (stats.entries, stats.evictions, stats.kept_out) == (100, 10, 10)
    hits = await cache.lookup(cache_keys("m", "1", np.arange(1000.0, 1010.0)[:, None]))
    assert hits == list(range(10))
    assert await cache.lookup(cache_keys("m", "1", np.zeros((1, 1)))) == [None]  # row 0 went


async def test_a_stream_with_no_repeats_stops_storing_and_evicting_once_full() -> None:
    cache = LRUCache(64 * 1024)  # the default doorkeeper: 1/16 of the bound
    for start in range(0, 20_000, 16):
        await land(cache, start, 16)
    stats = cache.stats
    assert stats.doorkeeper_bytes == 4096
    stored = stats.entries + stats.evictions
    assert stored < (64 * 1024) // LABEL + 16  # about one cache's worth, then no more
    assert stats.kept_out == 20_000 - stored
    assert stats.bytes <= stats.max_bytes


async def test_a_2d_chunk_is_one_read_only_block_charged_until_its_last_row_goes() -> None:
    """Scores (4 rows of 10): the rows are views of one copy of the chunk, and a hot
    row keeps its whole block charged after the other rows of the block are evicted."""
    scores = np.arange(40.0).reshape(4, 10)
    block = scores.nbytes
    cache = LRUCache(block + ROW + 5 * LABEL, doorkeeper_bytes=0)
    await land(cache, 0, 4, scores)
    scores[:] = -1  # the chunk's buffer reused: the cache kept its own copy
    keys = cache_keys("m", "1", np.arange(4.0)[:, None])
    rows = await cache.lookup(keys)
    bases = {id(row.base) for row in rows}  # type: ignore[union-attr]
    assert len(bases) == 1  # one block, a view per row
    assert not any(row.flags.writeable for row in rows)  # type: ignore[union-attr]
    np.testing.assert_array_equal(np.stack(rows), np.arange(40.0).reshape(4, 10))  # type: ignore[arg-type]
    assert cache.stats.bytes == block + 4 * ROW
    await cache.lookup(keys[:1])  # row 0 is now the most recently used
    await land(cache, 100, 5)  # 5 labels: rows 1-3 of the block are evicted, row 0 stays
    stats = cache.stats
    assert (stats.entries, stats.evictions) == (6, 3)
    assert stats.bytes == block + ROW + 5 * LABEL  # the whole block, still held
    assert stats.bytes <= stats.max_bytes
    (row0,) = await cache.lookup(keys[:1])
    np.testing.assert_array_equal(row0, np.arange(10.0))  # type: ignore[arg-type]
    await cache.discard("m")
    assert (cache.stats.entries, cache.stats.bytes) == (0, 0)  # the last row took its block


async def test_the_admitted_rows_of_a_2d_chunk_share_one_block_of_their_own() -> None:
    cache = LRUCache(10 * LABEL + 4096, doorkeeper_bytes=4096)
    await land(cache, 0, 18)  # labels, until a chunk of two scores no longer fits
    await land(cache, 100, 2, np.zeros((2, 10)))  # sighted, kept out
    before = cache.stats
    assert (before.kept_out, before.doorkeeper_bytes) == (2, 4096)
    scores = np.arange(40.0).reshape(4, 10)
    await land(cache, 99, 4, scores)  # rows 100 and 101 were sighted: only they are stored
    keys = cache_keys("m", "1", np.arange(99.0, 103.0)[:, None])
    found = await cache.lookup(keys)
    assert found[0] is None
    assert found[3] is None
    assert found[1].base is found[2].base  # type: ignore[union-attr]
    assert found[1].base.nbytes == 2 * 10 * 8  # type: ignore[union-attr]
    np.testing.assert_array_equal(np.stack(found[1:3]), scores[1:3])  # type: ignore[arg-type]
    stats = cache.stats
    evicted = stats.evictions - before.evictions
    assert stats.bytes == before.bytes + 2 * 10 * 8 + 2 * ROW - evicted * LABEL
    assert stats.bytes <= stats.max_bytes
