"""Remembered queries for feedback: bounded, used once, per app."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import NotFound
from clipper.frontend.feedback import FeedbackStore, Remembered
from clipper.frontend.selection import Selection

ENTRY = Remembered("app", "", Selection(("m",), {"m": 1.0}), {"m": np.array(3)})


def test_ids_are_consecutive_from_a_random_offset() -> None:
    a, b = FeedbackStore(10, seed=1), FeedbackStore(10, seed=2)
    first = a.new_id()
    assert a.new_id() == first + 1
    assert b.new_id() != first
    assert first < 2**53  # exact in JSON numbers


def test_an_id_is_used_up_by_its_feedback() -> None:
    store = FeedbackStore(10)
    query = store.new_id()
    store.remember(query, ENTRY)
    assert store.get("app", query) is ENTRY
    store.forget(query)
    with pytest.raises(NotFound, match=f"unknown query id {query}"):
        store.get("app", query)


def test_another_apps_query_is_not_found() -> None:
    store = FeedbackStore(10)
    query = store.new_id()
    store.remember(query, ENTRY)
    with pytest.raises(NotFound):
        store.get("other", query)


def test_the_oldest_queries_are_forgotten_first() -> None:
    store = FeedbackStore(3)
    ids = [store.new_id() for _ in range(5)]
    for query in ids:
        store.remember(query, ENTRY)
    assert len(store) == 3
    with pytest.raises(NotFound):
        store.get("app", ids[1])
    assert store.get("app", ids[4]) is ENTRY
