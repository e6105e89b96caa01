"""The doorkeeper: a key is admitted on its second sighting, within a bound in bytes."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from clipper.frontend.cache import cache_keys
from clipper.frontend.cache.doorkeeper import HASH_BYTES, Doorkeeper


def keys(count: int, start: int = 0) -> list[bytes]:
    return cache_keys("m", "1", np.arange(start, start + count, dtype=np.float64)[:, None])


def test_a_key_is_admitted_on_its_second_sighting() -> None:
    doorkeeper = Doorkeeper(2 * HASH_BYTES * 8)
    a, b, c = keys(3)
    assert doorkeeper.admit([a, b]) == [False, False]
    assert doorkeeper.admit([a, c, b]) == [True, False, True]
    assert doorkeeper.admit([c]) == [True]


def test_it_remembers_two_generations_and_no_more() -> None:
    doorkeeper = Doorkeeper(2 * HASH_BYTES * 4)  # 4 hashes per generation
    assert doorkeeper.capacity == 4
    first = keys(4)
    doorkeeper.admit(first)
    doorkeeper.admit(keys(4, 100))  # the first four move to the older generation
    assert doorkeeper.admit(first[:1]) == [True]
    for start in range(200, 240, 4):
        doorkeeper.admit(keys(4, start))
        assert doorkeeper.hashes <= 2 * doorkeeper.capacity
    assert doorkeeper.admit(first[1:2]) == [False]  # forgotten: sighted long ago


def test_a_chunk_larger_than_a_generation_keeps_its_last_keys() -> None:
    doorkeeper = Doorkeeper(2 * HASH_BYTES * 4)
    many = keys(10)
    doorkeeper.admit(many)
    assert doorkeeper.hashes == 4
    assert doorkeeper.admit(many) == [False] * 6 + [True] * 4


def test_its_memory_stays_within_its_bytes() -> None:
    """Hashes of a stream with no repeats, past several generations: what the sets
    and the ints in them hold, measured, is within what the cache sets aside."""
    doorkeeper = Doorkeeper(256 * 1024)
    stream = keys(5 * doorkeeper.capacity)  # made before tracing: not the doorkeeper's
    tracemalloc.start()
    try:
        for start in range(0, len(stream), 16):
            doorkeeper.admit(stream[start : start + 16])
            if start % 1024 == 0:
                assert tracemalloc.get_traced_memory()[0] <= doorkeeper.max_bytes
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert doorkeeper.hashes >= doorkeeper.capacity
    assert held <= doorkeeper.max_bytes
    assert peak <= doorkeeper.max_bytes * 1.25  # while a set grows its table


def test_too_few_bytes_for_one_hash_per_generation_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        Doorkeeper(HASH_BYTES)
