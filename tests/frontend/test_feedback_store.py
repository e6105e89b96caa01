"""Remembered queries for feedback: bounded in bytes per app, copies, used once."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import NotFound
from clipper.frontend.feedback import ARRAY_OVERHEAD, ENTRY_OVERHEAD, FeedbackStore
from clipper.frontend.selection import Selection

PICK = Selection(("m",), {"m": 1.0})
ROW_BYTES = ENTRY_OVERHEAD + ARRAY_OVERHEAD + 8  # one int64 output


def remember(store: FeedbackStore, app: str = "app", output: np.ndarray | None = None) -> int:
    query = store.new_id()
    store.remember(query, app, "", PICK, {"m": np.array(3) if output is None else output})
    return query


def test_ids_are_consecutive_from_a_random_offset() -> None:
    a, b = FeedbackStore(10_000, seed=1), FeedbackStore(10_000, seed=2)
    first = a.new_id()
    assert a.new_id() == first + 1
    assert b.new_id() != first
    assert first < 2**53  # exact in JSON numbers


def test_an_id_is_used_up_by_its_feedback() -> None:
    store = FeedbackStore(10_000)
    query = remember(store)
    assert store.get("app", query).outputs["m"] == 3
    store.forget("app", query)
    with pytest.raises(NotFound, match=f"unknown query id {query}"):
        store.get("app", query)
    assert store.stats()[0].bytes == 0


def test_another_apps_query_is_not_found() -> None:
    store = FeedbackStore(10_000)
    query = remember(store)
    with pytest.raises(NotFound):
        store.get("other", query)


def test_the_byte_bound_evicts_the_oldest_first_and_counts_evictions() -> None:
    store = FeedbackStore(3 * ROW_BYTES)
    ids = [remember(store) for _ in range(5)]
    (stats,) = store.stats()
    assert (stats.entries, stats.bytes, stats.evictions) == (3, 3 * ROW_BYTES, 2)
    with pytest.raises(NotFound, match=f"query id {ids[1]} of app 'app' was evicted"):
        store.get("app", ids[1])
    assert store.get("app", ids[4]).outputs["m"] == 3


def test_large_outputs_take_more_of_the_bound() -> None:
    store = FeedbackStore(12_000)
    scores = np.zeros(1000)  # 8,000 bytes a row: one at a time fits
    for _ in range(3):
        remember(store, output=scores)
    (stats,) = store.stats()
    assert stats.entries == 1
    assert stats.bytes <= store.max_bytes


def test_each_app_has_its_own_bound() -> None:
    store = FeedbackStore(2 * ROW_BYTES)
    kept = remember(store, app="quiet")
    for _ in range(10):
        remember(store, app="busy")
    assert store.get("quiet", kept).outputs["m"] == 3
    by_app = {s.app: s for s in store.stats()}
    assert by_app["busy"].entries == 2
    assert by_app["busy"].evictions == 8


def test_a_stored_row_is_a_copy_not_a_view_of_the_batch() -> None:
    store = FeedbackStore(10 * ROW_BYTES)
    batch = np.arange(40.0).reshape(10, 4)
    query = remember(store, output=batch[3])
    kept = store.get("app", query).outputs["m"]
    assert kept.base is None
    assert kept.flags.owndata
    batch[3] = -1.0
    assert kept.tolist() == [12.0, 13.0, 14.0, 15.0]


def test_a_zero_bound_remembers_nothing() -> None:
    store = FeedbackStore(0)
    query = remember(store)
    with pytest.raises(NotFound):
        store.get("app", query)
