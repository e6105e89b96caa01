"""UntrackedFifo: oldest-first, bounded in bytes, and invisible to the garbage collector."""

from __future__ import annotations

import gc

import numpy as np

from clipper.frontend.feedback import FeedbackStore
from clipper.frontend.selection import Selection
from clipper.frontend.untracked import MIN_SLOTS, UntrackedFifo, flatten, groups


def value(i: int) -> tuple[object, ...]:
    return ("ctx", i, "m", np.full(1, float(i)))


def keys(fifo: UntrackedFifo) -> list[int]:
    """Live keys, oldest first (by reading the ring the way eviction does)."""
    size = len(fifo._values)
    slots = [seq % size for seq in range(fifo._oldest, fifo._next)]
    return [int(fifo._keys[s]) for s in slots if fifo._values[s] is not None]


def test_the_oldest_go_first_to_keep_the_byte_bound() -> None:
    fifo = UntrackedFifo(max_bytes=100)
    for i in range(12):
        assert fifo.put(i, value(i), 10)
    assert fifo.bytes == 100
    assert len(fifo) == 10
    assert keys(fifo) == list(range(2, 12))
    assert (fifo.evictions, fifo.evicted_through) == (2, 1)
    assert fifo.get(1) is None
    assert fifo.get(2)[1] == 2


def test_a_value_over_the_bound_is_not_kept_and_evicts_nothing() -> None:
    fifo = UntrackedFifo(max_bytes=100)
    fifo.put(1, value(1), 60)
    assert not fifo.put(2, value(2), 101)
    assert keys(fifo) == [1]
    assert fifo.bytes == 60


def test_putting_a_key_again_replaces_it_as_the_newest() -> None:
    fifo = UntrackedFifo(max_bytes=1000)
    for i in range(3):
        fifo.put(i, value(i), 10)
    fifo.put(0, ("again",), 30)
    assert keys(fifo) == [1, 2, 0]
    assert fifo.get(0) == ("again",)
    assert fifo.bytes == 50


def test_popped_entries_leave_holes_that_eviction_skips() -> None:
    fifo = UntrackedFifo(max_bytes=50)
    for i in range(5):
        fifo.put(i, value(i), 10)
    assert fifo.pop(0)[1] == 0  # the oldest: the ring's start moves past it
    assert fifo.pop(2)[1] == 2  # a hole in the middle
    assert fifo.pop(2) is None
    assert fifo.bytes == 30
    for i in range(5, 9):
        fifo.put(i, value(i), 10)
    assert keys(fifo) == [4, 5, 6, 7, 8]  # 1 and 3 evicted; the hole cost nothing
    assert fifo.evictions == 2


def test_groups_undo_flatten() -> None:
    pairs = [("a", 1.0), ("b", np.ones(2)), ("c", None)]
    flat = flatten(pairs)
    assert len(flat) == 6
    assert [g[0] for g in groups(flat, 2)] == ["a", "b", "c"]


def test_the_ring_grows_in_order_and_compacts_holes_behind_an_old_entry() -> None:
    """One query never labelled while a million others are: the ring must not grow with
    the holes the labelled ones leave behind it."""
    fifo = UntrackedFifo(max_bytes=10**12)
    fifo.put(-1, value(-1), 10)  # never popped: the oldest, for good
    for i in range(3 * MIN_SLOTS):
        fifo.put(i, value(i), 10)
    assert keys(fifo) == [-1, *range(3 * MIN_SLOTS)]
    grown = len(fifo._values)
    assert grown >= 3 * MIN_SLOTS
    for i in range(3 * MIN_SLOTS):
        fifo.pop(i)
    for i in range(3 * MIN_SLOTS, 3 * MIN_SLOTS + 100_000):
        fifo.put(i, value(i), 10)
        fifo.pop(i)
    assert len(fifo._values) == grown
    assert keys(fifo) == [-1]
    assert fifo.get(-1)[1] == -1


def test_the_collector_walks_none_of_it() -> None:
    fifo = UntrackedFifo(max_bytes=10**9)
    for i in range(20_000):
        fifo.put(i, value(i), 10)
    gc.collect()  # one collection: flat tuples are untracked at their first
    assert not gc.is_tracked(fifo._values)
    assert not gc.is_tracked(fifo._where)
    assert not any(gc.is_tracked(fifo._values[s]) for s in range(20_000))


def test_a_full_feedback_store_adds_no_objects_to_collect() -> None:
    """Fails on a store of dataclass entries in an OrderedDict: each entry was four
    or five tracked objects that every full collection walked."""
    store = FeedbackStore(max_bytes=64 * 2**20, seed=0)
    versions = {"m": "v1"}
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(20_000):
        selection = Selection(("m",), {"m": 1.0})
        store.remember(store.new_id(), "app", "ctx", selection, {"m": np.ones(10)}, versions)
    gc.collect()
    assert len(store) == 20_000
    assert len(gc.get_objects()) - before < 100
    first = store.new_id() - 20_000
    entry = store.get("app", first)
    assert entry.selection == Selection(("m",), {"m": 1.0})
    assert (entry.context, dict(entry.versions)) == ("ctx", {"m": "v1"})
    np.testing.assert_array_equal(entry.outputs["m"], np.ones(10))
