"""The deadline queue: order, bounds, expiry, splitting and reassembly of chunks."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from clipper.common.errors import DeadlineExceeded, Overloaded, PayloadTooLarge
from clipper.frontend.batching.queue import Chunk, DeadlineQueue


def chunk(rows: int, deadline: float, start: float = 0.0) -> Chunk:
    data = np.arange(start, start + rows, dtype=np.float64).reshape(rows, 1)
    return Chunk(data, deadline, asyncio.get_running_loop().create_future())


async def test_takes_the_closest_deadline_first() -> None:
    queue = DeadlineQueue(100)
    late, early, middle = chunk(1, 30.0), chunk(1, 10.0), chunk(1, 20.0)
    for c in (late, early, middle):
        queue.put(c, now=0.0)
    parts = queue.take(10, now=1.0)
    assert [p[0] for p in parts] == [early, middle, late]
    assert queue.rows == 0


async def test_take_respects_the_limit_and_splits_a_large_chunk() -> None:
    queue = DeadlineQueue(100)
    big = chunk(5, 10.0)
    small = chunk(1, 20.0, start=100)
    queue.put(big, 0.0)
    queue.put(small, 0.0)
    first = queue.take(3, 1.0)
    assert first == [(big, 0, 3)]
    assert queue.rows == 3
    second = queue.take(3, 1.0)
    assert second == [(big, 3, 2), (small, 0, 1)]
    assert queue.rows == 0


async def test_split_outputs_are_reassembled_in_order() -> None:
    queue = DeadlineQueue(100)
    big = chunk(5, 10.0)
    queue.put(big, 0.0)
    parts = queue.take(2, 1.0) + queue.take(10, 1.0)
    for c, start, count in reversed(parts):  # answers may come back in any order
        c.deliver(start, c.rows[start : start + count] * 10)
    result = await big.future
    np.testing.assert_array_equal(result, np.arange(5.0).reshape(5, 1) * 10)


async def test_a_retried_part_delivers_into_its_original_chunk() -> None:
    queue = DeadlineQueue(100)
    big = chunk(4, 10.0)
    queue.put(big, 0.0)
    ((c, start, count),) = queue.take(2, 1.0)
    retry = c.retry(start, count)
    assert retry.retried
    assert not big.retried
    queue.push(retry, 1.0)
    rest = queue.take(10, 1.0)
    assert {(p[0] is retry) for p in rest} == {True, False}
    for part, first, size in rest:
        part.deliver(first, part.rows[first : first + size] + 1)
    np.testing.assert_array_equal(await big.future, np.arange(4.0).reshape(4, 1) + 1)


async def test_a_retried_part_keeps_its_arrival_so_the_queue_age_stays_true() -> None:
    # A retry keeps the original deadline, so it sits at the head: with its own
    # push time as its arrival, the queue would look fresh (age 0) and admission
    # control would stop shedding until it was taken.
    queue = DeadlineQueue(100)
    original = chunk(4, 10.0)
    queue.put(original, now=1.0)
    queue.put(chunk(1, 20.0, start=100), now=1.5)
    [(taken, start, count)] = queue.take(4, now=2.0)
    queue.push(taken.retry(start + 2, count - 2), now=3.0)
    assert queue.oldest_enqueued() == 1.0


async def test_expired_and_abandoned_chunks_never_reach_a_batch() -> None:
    queue = DeadlineQueue(100)
    expired, abandoned, alive = chunk(2, 5.0), chunk(1, 50.0), chunk(1, 60.0)
    for c in (expired, abandoned, alive):
        queue.put(c, 0.0)
    abandoned.future.cancel()
    parts = queue.take(10, now=6.0)
    assert [p[0] for p in parts] == [alive]
    assert queue.rows == 0
    with pytest.raises(DeadlineExceeded):
        await expired.future


async def test_a_full_queue_refuses_with_retry_after_and_recovers() -> None:
    queue = DeadlineQueue(3)
    queue.put(chunk(2, 10.0), 0.0)
    with pytest.raises(Overloaded) as refused:
        queue.put(chunk(2, 10.0), 0.0)
    assert refused.value.http_headers()["Retry-After"] == "1"
    queue.put(chunk(1, 10.0), 0.0)  # what fits still goes in
    assert queue.rows == 3
    queue.take(3, 1.0)
    queue.put(chunk(2, 10.0), 1.0)


async def test_a_full_queue_makes_room_by_dropping_expired_chunks() -> None:
    queue = DeadlineQueue(2)
    stale = chunk(2, 5.0)
    queue.put(stale, 0.0)
    queue.put(chunk(2, 50.0), now=6.0)
    assert queue.rows == 2
    assert isinstance(stale.future.exception(), DeadlineExceeded)


async def test_a_chunk_larger_than_the_queue_is_refused_for_good() -> None:
    with pytest.raises(PayloadTooLarge, match="at most 4"):
        DeadlineQueue(4).put(chunk(5, 10.0), 0.0)


async def test_put_wakes_one_waiter_and_take_passes_leftover_work_on() -> None:
    queue = DeadlineQueue(100)
    first, second = queue.wait(), queue.wait()
    queue.put(chunk(3, 10.0), 0.0)
    assert first.done()
    assert not second.done()
    queue.take(1, 1.0)  # rows are left: the next idle batcher is woken
    assert second.done()


async def test_close_wakes_every_waiter() -> None:
    queue = DeadlineQueue(10)
    waiters = [queue.wait() for _ in range(3)]
    queue.close()
    assert queue.closed
    assert all(w.done() for w in waiters)


def rows_chunk(data: np.ndarray, deadline: float) -> Chunk:
    return Chunk(data, deadline, asyncio.get_running_loop().create_future())


async def test_a_batch_never_mixes_row_shapes_and_deadline_order_holds_across_them() -> None:
    queue = DeadlineQueue(100)
    short_early = rows_chunk(np.zeros((1, 2)), 10.0)
    long_ = rows_chunk(np.zeros((2, 3)), 20.0)
    short_late = rows_chunk(np.zeros((1, 2)), 30.0)
    long_late = rows_chunk(np.zeros((1, 3)), 40.0)
    for c in (long_late, short_late, long_, short_early):
        queue.put(c, 0.0)
    first = queue.take(10, 1.0)  # the head's shape: every short row, none of the long
    assert [p[0] for p in first] == [short_early, short_late]
    assert queue.rows == 3
    second = queue.take(10, 1.0)
    assert [p[0] for p in second] == [long_, long_late]
    assert queue.rows == 0


async def test_a_batch_never_mixes_dtypes_and_skipped_chunks_keep_their_place() -> None:
    queue = DeadlineQueue(100)
    floats = rows_chunk(np.zeros((2, 4)), 10.0)
    ints = rows_chunk(np.zeros((1, 4), dtype=np.int64), 15.0)
    more_floats = rows_chunk(np.ones((2, 4)), 20.0)
    for c in (floats, ints, more_floats):
        queue.put(c, 0.0)
    assert queue.take(3, 1.0) == [(floats, 0, 2), (more_floats, 0, 1)]
    # The int chunk, skipped, is now the closest deadline: it leaves before the rest.
    assert queue.take(3, 1.0) == [(ints, 0, 1)]
    assert queue.take(3, 1.0) == [(more_floats, 1, 1)]
    assert queue.rows == 0


async def test_expired_chunks_cost_no_exception_object_each() -> None:
    queue = DeadlineQueue(100)
    stale = [chunk(1, 5.0) for _ in range(3)]
    for c in stale:
        queue.put(c, 0.0)
    assert queue.take(10, now=6.0) == []
    errors = {id(c.future.exception()) for c in stale}
    assert len(errors) == 1  # one shared DeadlineExceeded, not one built per chunk
    assert isinstance(stale[0].future.exception(), DeadlineExceeded)
