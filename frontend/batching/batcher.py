"""One replica's batcher: pull a batch from the version's queue, send it, deliver.

Each replica has one batcher and at most one batch in flight, as in Clipper:
the container predicts one batch at a time anyway, and a replica that is busy
does not pull, so work flows to whichever replica is free. The batch size is
``min(limit, queued rows)`` with the limit from the replica's ``AIMD``
controller; the batcher waits for a fuller batch only when the model asks for
delayed batching (``batch_wait_ms``), and then never past the oldest query's
wait budget.

Failures, by kind:

* the replica is gone (connection refused, UNAVAILABLE): it is marked down and
  every row of the batch goes back into the queue once, marked as retried, for
  another replica (the deadline order puts it first). A second failure, or no
  other replica up, fails those rows with ``RetriesExhausted`` / ``Unavailable``.
* the deadline passed (DEADLINE_EXCEEDED): AIMD counts it as an overrun, the
  callers get their default.
* the model raised or rejected the input: every caller in the batch gets it.
* anything else (a bug, outputs that cannot be delivered -- a model whose
  output row shape changes from batch to batch, so a request split across two
  batches cannot be reassembled): the batcher task crashes. It runs under
  ``clipper.common.tasks.supervise``, which logs the traceback, counts the
  crash (``clipper_frontend_task_crashes_total{task="batcher"}``) and restarts
  it after a short back-off; the batch it held fails with a ``ModelError``
  naming the replica and the cause, so every caller hears back at once instead
  of waiting for its deadline, and the replica keeps being served.

Stopping (a replica removed from the routing table, or shutdown) lets the batch
in flight finish and deliver before the task ends: removal drains, it does not
drop.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

from clipper.common.errors import ClipperError, DeadlineExceeded, ModelError, Unavailable
from clipper.common.tasks import Backoff, Supervised, TaskRegistry, supervise
from clipper.frontend.batching.aimd import AIMD
from clipper.frontend.batching.queue import DeadlineQueue, Part
from clipper.frontend.replicas import Replica

log = logging.getLogger(__name__)


class RetriesExhausted(Unavailable):
    """A batch failed on one replica and again on the one it was retried on."""


class BatchObserver(Protocol):
    """Where a batcher reports what it did (the metrics)."""

    def sent(self, rows: int, waits: list[float]) -> None:
        """A batch of ``rows`` left; ``waits``: how long each chunk in it was queued."""

    def answered(self, latency_s: float) -> None:
        """The replica answered the batch after ``latency_s``."""

    def retried(self, rows: int, exhausted: bool) -> None:
        """Rows of a failed batch were queued again, or failed for good."""


class Batcher:
    """Feeds one replica from its version's queue."""

    def __init__(
        self,
        replica: Replica,
        queue: DeadlineQueue,
        limit: AIMD,
        others_up: Callable[[Replica], bool],
        observer: BatchObserver,
        batch_wait_s: float = 0.0,
        tasks: TaskRegistry | None = None,
    ) -> None:
        self.replica = replica
        self.queue = queue
        self.limit = limit
        self.batch_wait_s = batch_wait_s
        self._others_up = others_up
        self._observer = observer
        self._tasks = tasks
        self._stopping = False
        self._held: list[Part] | None = None
        """The batch being sent: what a crash must fail."""
        self._task: Supervised | None = None

    def start(self) -> None:
        self._task = supervise(
            "batcher",
            self._run,
            registry=self._tasks,
            on_crash=self._crashed,
            backoff=Backoff(first_s=0.05, max_s=2.0, healthy_after_s=10.0),
        )

    async def stop(self) -> None:
        """Finish the batch in flight (if any), then end."""
        self._stopping = True
        if self._task is None:
            return
        if self._held is None:  # idle, or waiting to restart after a crash
            await self._task.stop()
            return
        await self._task.wait()

    async def finished(self) -> None:
        """Wait until the batcher ends by itself (its queue closed and empty)."""
        if self._task is not None:
            await self._task.wait()

    def _crashed(self, error: BaseException) -> None:
        """The task died: every caller of the batch it held hears why, at once."""
        parts, self._held = self._held, None
        if parts:
            replica = self.replica
            where = f"replica {replica.address} of {replica.model}@{replica.version}"
            cause = f"{type(error).__name__}: {error}"
            _fail(parts, ModelError(f"the batch for {where} failed in the frontend ({cause})"))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue, replica = self.queue, self.replica
        try:
            while not self._stopping:
                if not replica.up:
                    if queue.rows:
                        queue.wake_one()  # the work this batcher was woken for goes elsewhere
                    await replica.wait_up()
                elif not queue.rows:
                    if queue.closed:
                        return
                    await queue.wait()
                else:
                    limit = self.limit.limit
                    if self.batch_wait_s and queue.rows < limit:
                        await self._fill(limit, loop)
                    now = loop.time()
                    parts = queue.take(limit, now)
                    if parts:
                        self._held = parts
                        await self._send(parts, now, loop)
                        self._held = None
        finally:
            if queue.rows:
                queue.wake_one()

    async def _fill(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        """Delayed batching: wait for ``limit`` rows until the oldest has waited long enough."""
        oldest = self.queue.oldest_enqueued()
        until = (oldest if oldest is not None else loop.time()) + self.batch_wait_s
        while self.queue.rows < limit and not self._stopping:
            remaining = until - loop.time()
            if remaining <= 0:
                return
            waiter = self.queue.wait()
            timer = loop.call_later(remaining, _resolve, waiter)
            await waiter
            timer.cancel()

    async def _send(self, parts: list[Part], now: float, loop: asyncio.AbstractEventLoop) -> None:
        count = sum(size for _, _, size in parts)
        deadline = max(chunk.deadline for chunk, _, _ in parts)
        self._observer.sent(count, [now - chunk.enqueued for chunk, _, _ in parts])
        start = loop.time()
        try:
            outputs = await self.replica.infer(_stack(parts), deadline - start)
        except Unavailable as exc:
            self.replica.mark_down(exc.message)
            self._retry(parts, exc, loop.time())
            return
        except DeadlineExceeded as exc:
            self.limit.record(count, math.inf)
            _fail(parts, exc)
            return
        except ClipperError as exc:
            _fail(parts, exc)
            return
        except Exception as exc:  # a bug: the callers must still hear back
            log.exception("batch to %s failed", self.replica.address)
            _fail(parts, ModelError(f"the frontend failed to call the model: {exc!r}"))
            return
        latency = loop.time() - start
        self.limit.record(count, latency)
        self.queue.note_drained(count, latency)
        self._observer.answered(latency)
        position = 0
        for chunk, first, size in parts:
            chunk.deliver(first, outputs[position : position + size])
            position += size

    def _retry(self, parts: list[Part], error: ClipperError, now: float) -> None:
        address = self.replica.address
        others = self._others_up(self.replica)
        for chunk, first, size in parts:
            if chunk.future.done():  # its caller has already left
                continue
            if chunk.retried:
                self._observer.retried(size, exhausted=True)
                chunk.fail(RetriesExhausted(f"failed on two replicas, last {address}: {error}"))
            elif not others:
                chunk.fail(Unavailable(f"replica {address} failed ({error}) and no other is up"))
            else:
                self._observer.retried(size, exhausted=False)
                self.queue.push(chunk.retry(first, size), now)


def _stack(parts: list[Part]) -> np.ndarray:
    if len(parts) == 1:
        chunk, first, size = parts[0]
        return chunk.rows if size == len(chunk) else chunk.rows[first : first + size]
    return np.concatenate([chunk.rows[first : first + size] for chunk, first, size in parts])


def _fail(parts: list[Part], error: BaseException) -> None:
    for chunk, _, _ in parts:
        chunk.fail(error)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
