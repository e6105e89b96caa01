"""Admission control's two checks, on real queues (no servers needed)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from clipper.common.errors import Overloaded
from clipper.frontend.admission import (
    INCREASE,
    Admission,
    TooManyInFlight,
    WouldMissDeadline,
    too_late,
)
from clipper.frontend.batching.queue import Chunk
from clipper.frontend.metrics import Metrics
from clipper.frontend.routing.versions import VersionRuntime
from clipper.frontend.settings import FrontendSettings


def chunk(rows: int, deadline: float) -> Chunk:
    data = np.zeros((rows, 1))
    return Chunk(data, deadline, asyncio.get_running_loop().create_future())


def test_the_bound_on_rows_in_flight_refuses_with_a_429_and_recovers() -> None:
    admission = Admission(max_rows=8)
    admission.enter(6)
    with pytest.raises(TooManyInFlight) as refused:
        admission.enter(3)
    assert isinstance(refused.value, Overloaded)
    assert refused.value.http_status == 429
    assert "Retry-After" in refused.value.http_headers()
    admission.enter(2)
    admission.leave(8)
    admission.enter(20)  # larger than the bound, but alone: admitted, never starved
    assert admission.rows == 20


async def test_a_request_that_would_wait_past_its_deadline_is_refused() -> None:
    version = VersionRuntime("m", "1", FrontendSettings(), Metrics())
    for _ in range(5):
        version.queue.put(chunk(10, 100.0), 0.0)
    assert too_late(version, deadline=1.01, now=1.0) is None  # no drain rate measured yet
    version.queue.note_drained(10, 0.1)  # 100 rows/s: 50 rows queued = 0.5 s of work
    assert too_late(version, deadline=0.31, now=0.1) is None  # queued 0.1 s ago: a burst
    refusal = too_late(version, deadline=1.2, now=1.0)  # the queue has stood for 1 s
    assert isinstance(refusal, WouldMissDeadline)
    assert refusal.retry_after == pytest.approx(0.5)
    assert "50 rows queued" in refusal.message
    assert too_late(version, deadline=1.6, now=1.0) is None  # 0.5 s of wait, 0.1 s a batch
    # The wait alone fits, the batch after it does not: it would be a default.
    assert isinstance(too_late(version, deadline=1.55, now=1.0), WouldMissDeadline)
    # A drawn version is asked without the batch time: its slow batches (a canary's
    # cold replica) must not refuse what its wait alone would let through.
    assert too_late(version, deadline=1.55, now=1.0, service=False) is None
    assert too_late(version, deadline=0.15, now=0.1) is not None  # the burst, one batch short
    off = VersionRuntime("m", "1", FrontendSettings(shed_late=False), Metrics())
    off.queue.put(chunk(10, 100.0), 0.0)
    off.queue.note_drained(1, 1.0)
    assert too_late(off, deadline=1.1, now=1.0) is None


def test_the_limit_shrinks_when_requests_miss_their_objective_and_grows_back() -> None:
    admission = Admission(max_rows=1000)
    admission.answered(10, late=True, now=1.0, slo_s=0.05)
    assert admission.limit == 900
    admission.answered(10, late=True, now=1.01, slo_s=0.05)  # missed together: one cut
    assert admission.limit == 900
    for i in range(40):
        admission.answered(10, late=True, now=2.0 + i, slo_s=0.05)
    assert admission.limit == 100  # the floor, a tenth of the bound
    admission.enter(100)
    with pytest.raises(TooManyInFlight, match="limit of 100 rows in flight"):
        admission.enter(1)
    admission.leave(100)
    for _ in range(2000):
        admission.answered(10, late=False, now=50.0, slo_s=0.05)
    assert admission.limit == 1000  # back to the bound, never past it


def test_the_limit_grows_by_a_step_per_round_trip_not_by_the_rows_answered() -> None:
    """One limit's worth of rows answered in time adds ``INCREASE`` rows, not as many
    rows as were answered: that doubled the limit each round trip, so under a steady
    overload the requests on time outgrew the cuts of the late ones."""
    admission = Admission(max_rows=10_000)
    admission.limit = 1000.0
    for _ in range(100):  # 1,000 rows: one window
        admission.answered(10, late=False, now=1.0, slo_s=0.05)
    assert 1000 + INCREASE * 0.95 <= admission.limit <= 1000 + INCREASE
