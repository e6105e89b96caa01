"""The AIMD batch limit: grows on full batches in budget, shrinks on overruns."""

from __future__ import annotations

import math

import pytest

from clipper.frontend.batching.aimd import AIMD, AIMDParams


def params(**overrides: object) -> AIMDParams:
    values: dict[str, object] = {"budget_s": 0.05, "max_batch_size": 64}
    values.update(overrides)
    return AIMDParams(**values)  # type: ignore[arg-type]


def test_starts_at_the_initial_limit() -> None:
    assert AIMD(params(initial=4)).limit == 4
    assert AIMD(params(initial=100, max_batch_size=8)).limit == 8


def test_full_batches_within_budget_grow_the_limit_additively() -> None:
    aimd = AIMD(params(initial=1, increase=2))
    for expected in (3, 5, 7):
        aimd.record(aimd.limit, 0.01)
        assert aimd.limit == expected


def test_a_batch_smaller_than_the_limit_is_no_evidence_to_grow() -> None:
    aimd = AIMD(params(initial=8))
    for _ in range(100):
        aimd.record(3, 0.001)  # low load: whatever was queued
    assert aimd.limit == 8


def test_an_overrun_shrinks_the_limit_multiplicatively() -> None:
    aimd = AIMD(params(initial=40, decrease=0.5))
    aimd.record(40, 0.2)
    assert aimd.limit == 20
    aimd.record(5, math.inf)  # a failure by timeout counts as an overrun
    assert aimd.limit == 10


def test_the_limit_stays_between_one_and_the_maximum() -> None:
    aimd = AIMD(params(initial=2, max_batch_size=5, increase=10))
    aimd.record(2, 0.0)
    assert aimd.limit == 5
    for _ in range(50):
        aimd.record(1, 1.0)
    assert aimd.limit == 1


def test_converges_under_a_model_whose_latency_grows_with_the_batch() -> None:
    # latency = 2 ms + 1 ms per row; budget 50 ms: the largest batch in budget is 48.
    aimd = AIMD(params(initial=1, max_batch_size=256, decrease=0.9))
    limits = []
    for _ in range(500):
        rows = aimd.limit
        aimd.record(rows, 0.002 + 0.001 * rows)
        limits.append(aimd.limit)
    tail = limits[-100:]
    assert max(tail) <= 49
    assert min(tail) >= 40  # a sawtooth just under the capacity, never collapsing


@pytest.mark.parametrize("size", [1, 32])
def test_fixed_mode_ignores_latency(size: int) -> None:
    aimd = AIMD(params(adaptive=False, max_batch_size=size, initial=1))
    assert aimd.limit == size
    aimd.record(size, 10.0)
    assert aimd.limit == size


def test_reconfigure_keeps_the_learned_limit_within_the_new_maximum() -> None:
    aimd = AIMD(params(initial=30))
    aimd.reconfigure(params(max_batch_size=10))
    assert aimd.limit == 10
    aimd.reconfigure(params(max_batch_size=100))
    assert aimd.limit == 10
    aimd.reconfigure(params(max_batch_size=16, adaptive=False))
    assert aimd.limit == 16
