"""Forced hash collisions never answer one row with another's prediction.

A small row's key is its bytes (``clipper.frontend.cache.keys``): the cache's
dicts and sets find candidates by the key's hash and confirm them by comparing
the whole key, and the doorkeeper remembers hashes alone. Here every key has
one hash (a ``bytes`` whose ``__hash__`` is a constant, standing in for the
worst a hash could do), so every lookup, join and admission meets candidates
that are other rows: each must still get exactly its own answer.
"""

from __future__ import annotations

import asyncio

import numpy as np

from clipper.frontend.cache import LRUCache, RowKey, cache_keys
from clipper.frontend.cache.lru import ENTRY_OVERHEAD


async def settle() -> None:
    """Let landed chunks fill the cache: their done callbacks run, then the one
    ``_store`` the first of them scheduled."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class Colliding(bytes):
    """A key whose hash is the same for every row."""

    def __hash__(self) -> int:
        return 7


def keys_of(start: int, count: int) -> list[RowKey]:
    rows = np.arange(start, start + count, dtype=np.float64)[:, None]
    return [Colliding(key) for key in cache_keys("m", "1", rows)]


async def land(cache: LRUCache, keys: list[RowKey], outputs: np.ndarray) -> None:
    future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
    cache.expect(keys, future)
    future.set_result(outputs)
    await settle()  # the fill runs after the future's done callback


async def test_colliding_rows_are_stored_and_found_apart() -> None:
    assert len({hash(key) for key in keys_of(0, 20)}) == 1  # every key collides
    cache = LRUCache(1 << 20)
    await land(cache, keys_of(0, 10), np.arange(10) * 10)
    assert await cache.lookup(keys_of(100, 10)) == [None] * 10  # same hash, other rows
    assert await cache.lookup(keys_of(0, 10)) == list(np.arange(10) * 10)
    await land(cache, keys_of(100, 10), np.arange(10) + 1000)
    assert await cache.lookup(keys_of(0, 10)) == list(np.arange(10) * 10)
    assert await cache.lookup(keys_of(100, 10)) == list(np.arange(10) + 1000)


async def test_a_colliding_row_does_not_join_another_rows_flight() -> None:
    cache = LRUCache(1 << 20)
    future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
    flight = cache.expect(keys_of(0, 3), future)
    found = await cache.lookup([*keys_of(1, 1), *keys_of(50, 1), *keys_of(0, 1)])
    assert found == [(flight, 1), None, (flight, 0)]  # identical rows still coalesce
    future.set_result(np.array([7, 8, 9]))
    await settle()
    assert await cache.lookup([*keys_of(50, 1), *keys_of(2, 1)]) == [None, 9]


async def test_the_doorkeeper_admits_a_colliding_row_early_with_its_own_answer() -> None:
    """Once full, a row is stored on its second sighting, which the doorkeeper tells
    by hash: a colliding row is admitted early, and stored with its own output."""
    label = 8 + ENTRY_OVERHEAD + len(keys_of(0, 1)[0])
    cache = LRUCache(10 * label + 4096, doorkeeper_bytes=4096)
    await land(cache, keys_of(0, 10), np.arange(10))  # fits
    await land(cache, keys_of(100, 10), np.arange(100, 110))  # does not: sighted, kept out
    assert cache.stats.kept_out == 10
    await land(cache, keys_of(200, 2), np.array([200, 201]))  # same hash: "sighted"
    assert cache.stats.kept_out == 10
    assert await cache.lookup(keys_of(200, 2)) == [200, 201]
    assert await cache.lookup(keys_of(100, 10)) == [None] * 10
    assert await cache.lookup(keys_of(2, 8)) == list(range(2, 10))  # the 2 oldest went
