"""A model version's queue: bounded, ordered by deadline, shared by its replicas.

Queries wait here as ``Chunk``s: the rows of one request bound for one model
version (a single-row request is a chunk of one row). Every replica's batcher
pulls from the same queue, so a faster replica simply comes back for more work
sooner; no static split of traffic can do that as well.

* Deadline order: the query closest to its deadline leaves first. Chunks whose
  deadline has passed, or whose caller has given up, leave the queue when they
  reach its head and are never sent to a model.
* Bounded in rows, so memory cannot grow without bound under overload: a put
  into a full queue raises ``Overloaded`` (429 / RESOURCE_EXHAUSTED) with a
  Retry-After estimated from how fast the queue drains.
* A chunk larger than what a batch may hold is split across batches; its
  outputs are written back at their offsets, and its future resolves once every
  row has an output (``Chunk.deliver``).
* A batch never mixes row shapes or dtypes: an app with no fixed input shape
  may queue rows of several lengths for one version, and stacking them would
  fail (or, worse, silently upcast). ``take`` fills a batch only with chunks of
  the head chunk's kind (``Chunk.kind``: dtype and row shape); the others keep
  their place and go in a later batch. The head is always the chunk closest to
  its deadline, so deadline order holds across kinds and none starves. Padding
  rows to one length is left out on purpose: it changes what the model sees,
  and no model declares that it is safe.

Batchers wait for work on a future that the next ``put`` resolves: one waiter
is woken per put (the one that has waited longest), so idle replicas take
turns instead of all racing for one row.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque

import numpy as np

from clipper.common.errors import DeadlineExceeded, Overloaded, PayloadTooLarge

EXPIRED = DeadlineExceeded("the deadline passed while the query was queued")
"""What every expired chunk fails with: one shared instance (futures store it and
never raise it in place), so dropping expired work under overload builds no
exception object per chunk."""


class Chunk:
    """Some rows of one request for one model version, and where their outputs go."""

    __slots__ = (
        "_filled",
        "_out",
        "deadline",
        "enqueued",
        "future",
        "kind",
        "offset",
        "parent",
        "rows",
        "taken",
    )

    def __init__(
        self,
        rows: np.ndarray,
        deadline: float,
        future: asyncio.Future[np.ndarray],
        parent: Chunk | None = None,
        offset: int = 0,
    ) -> None:
        self.rows = rows
        self.deadline = deadline
        self.future = future
        """Resolves to the outputs of all rows, in order (shared with a retry's parent)."""
        self.parent = parent
        self.offset = offset
        self.kind: Kind = (rows.dtype, rows.shape[1:])
        """What must match for chunks to share a batch: dtype and row shape."""
        self.enqueued = 0.0
        self.taken = 0
        """Rows already handed to batches."""
        self._out: np.ndarray | None = None
        self._filled = 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def retried(self) -> bool:
        return self.parent is not None

    def retry(self, start: int, count: int) -> Chunk:
        """A chunk for rows ``start:start+count`` that delivers into this one. It keeps
        this one's arrival, not its own: its rows have waited since then, and the
        queue's age (admission's expected wait, delayed batching) must say so."""
        child = Chunk(self.rows[start : start + count], self.deadline, self.future, self, start)
        child.enqueued = self.enqueued
        return child

    def deliver(self, start: int, outputs: np.ndarray) -> None:
        """Outputs for rows ``start:start+len(outputs)``; resolves when all rows have one."""
        if self.parent is not None:
            self.parent.deliver(self.offset + start, outputs)
            return
        if self.future.done():
            return
        size = len(self.rows)
        if start == 0 and len(outputs) == size:
            self.future.set_result(outputs)
            return
        if self._out is None:
            self._out = np.empty((size, *outputs.shape[1:]), dtype=outputs.dtype)
        self._out[start : start + len(outputs)] = outputs
        self._filled += len(outputs)
        if self._filled >= size:
            self.future.set_result(self._out)

    def fail(self, error: BaseException) -> None:
        """Every caller waiting on these rows gets ``error``."""
        if not self.future.done():
            self.future.set_exception(error)
            self.future.exception()  # retrieved: a caller that left at its deadline is fine


Kind = tuple[np.dtype, tuple[int, ...]]
"""A chunk's dtype and row shape (its rows' shape without the batch dimension)."""

Part = tuple[Chunk, int, int]
"""``count`` rows of a chunk, starting at row ``start``: what one batch holds of it."""


class DeadlineQueue:
    """Chunks by deadline, bounded in rows."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows = 0
        self.closed = False
        self._heap: list[tuple[float, int, Chunk]] = []
        self._seq = itertools.count()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._drain_rate = 0.0  # rows per second leaving the queue, smoothed
        self.service_s = 0.0
        """How long a batch takes once sent (seconds, smoothed): a row still needs this
        after its wait in the queue."""

    def put(self, chunk: Chunk, now: float) -> None:
        """Enqueue, or raise ``Overloaded`` (full) / ``PayloadTooLarge`` (can never fit)."""
        size = len(chunk)
        if size > self.capacity:
            raise PayloadTooLarge(
                f"the request has {size} rows; a model's queue holds at most {self.capacity}"
            )
        if self.rows + size > self.capacity:
            self.drop_expired(now)
            if self.rows + size > self.capacity:
                raise Overloaded(
                    f"the queue is full ({self.rows} of {self.capacity} rows)",
                    retry_after=self._retry_after(),
                )
        self.push(chunk, now)

    def push(self, chunk: Chunk, now: float) -> None:
        """Enqueue without the capacity check (a retry, whose rows were admitted and
        which keeps their arrival time)."""
        if not chunk.retried:
            chunk.enqueued = now
        heapq.heappush(self._heap, (chunk.deadline, next(self._seq), chunk))
        self.rows += len(chunk)
        self.wake_one()

    def take(self, limit: int, now: float) -> list[Part]:
        """Up to ``limit`` rows of the head chunk's kind, by deadline, after dropping
        expired or abandoned chunks. Chunks of another kind stay queued."""
        parts: list[Part] = []
        room = limit
        heap = self._heap
        kind: Kind | None = None
        other_kinds: list[tuple[float, int, Chunk]] = []
        while heap and room > 0:
            chunk = heap[0][2]
            if chunk.future.done() or chunk.deadline <= now:
                heapq.heappop(heap)
                self._drop(chunk)
                continue
            if kind is None:
                kind = chunk.kind
            elif chunk.kind != kind:
                other_kinds.append(heapq.heappop(heap))
                continue
            start = chunk.taken
            count = min(room, len(chunk) - start)
            parts.append((chunk, start, count))
            chunk.taken = start + count
            room -= count
            self.rows -= count
            if chunk.taken == len(chunk):
                heapq.heappop(heap)
        for entry in other_kinds:  # same deadline and sequence: their order is kept
            heapq.heappush(heap, entry)
        if heap:
            self.wake_one()  # work left for another idle replica
        else:
            self.rows = 0  # nothing queued: the count cannot drift and spin a batcher
        return parts

    @property
    def full(self) -> bool:
        return self.rows >= self.capacity

    def oldest_enqueued(self) -> float | None:
        """When the head chunk was enqueued (delayed batching waits from there)."""
        return self._heap[0][2].enqueued if self._heap else None

    def wait(self) -> asyncio.Future[None]:
        """A future that the next ``put`` (or ``wake_all``) resolves."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def wake_all(self) -> None:
        while self._waiters:
            self._resolve(self._waiters.popleft())

    def drop_expired(self, now: float) -> int:
        """Remove every expired or abandoned chunk (a full queue makes room this way)."""
        kept = []
        for entry in self._heap:
            chunk = entry[2]
            if chunk.future.done() or chunk.deadline <= now:
                self._drop(chunk)
            else:
                kept.append(entry)
        dropped = len(self._heap) - len(kept)
        if dropped:
            heapq.heapify(kept)
            self._heap = kept
        return dropped

    def note_drained(self, rows: int, seconds: float) -> None:
        """A batch of ``rows`` took ``seconds``: feeds the Retry-After estimate, and the
        service time admission adds to a row's wait."""
        if seconds > 0:
            rate = rows / seconds
            self._drain_rate = rate if not self._drain_rate else 0.8 * self._drain_rate + 0.2 * rate
            self.service_s = seconds if not self.service_s else 0.8 * self.service_s + 0.2 * seconds

    def expected_wait(self) -> float:
        """Seconds the rows queued now should take to drain at the measured rate (per
        replica); 0 until a batch has been timed."""
        return self.rows / self._drain_rate if self._drain_rate > 0 else 0.0

    def close(self) -> None:
        """No more puts; batchers finish what is queued, then stop."""
        self.closed = True
        self.wake_all()

    def _retry_after(self) -> float:
        return max(1.0, self.expected_wait())

    def _drop(self, chunk: Chunk) -> None:
        self.rows -= len(chunk) - chunk.taken
        chunk.fail(EXPIRED)

    def wake_one(self) -> None:
        """Wake the batcher that has waited longest."""
        while self._waiters:
            if self._resolve(self._waiters.popleft()):
                return

    @staticmethod
    def _resolve(waiter: asyncio.Future[None]) -> bool:
        if waiter.done():
            return False
        waiter.set_result(None)
        return True
