"""The reconcile queue: which object to reconcile next, and when.

Why not kopf's ``on.create``/``on.update`` handlers with their retries: those are
edge-triggered and keep their progress on the object (annotations or
``status.kopf``), while a rollout is level-triggered -- every reconcile reads the
whole state, decides, and says when it wants to run again (a canary pause, a
drain, a deadline: ``Plan.requeue_after``). And kopf's daemons and timers would
put a finalizer on every object. So kopf's watch handlers only *enqueue* keys
here, and a few workers drain the queue, as controller-runtime's work queue does:

- a key waits at most until its earliest requested time (``add(key, delay)``);
- a key is never reconciled by two workers at once; a key added while it is
  being reconciled runs again right after, so no change is lost;
- a reconcile that raises is retried with a per-key exponential back-off, reset
  by the next success;
- a reconcile cut short by cancellation (the operator stopping, or the queue's
  task restarted by its supervisor after a crash, see
  ``clipper.operator.handlers.supervision``) puts its key back, so a restarted
  queue redoes it instead of forgetting it until the object's next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Reconcile = Callable[[K], Awaitable[float | None]]
"""Reconciles one key; returns seconds until it wants to run again, or None."""


class ReconcileQueue(Generic[K]):
    """Delayed, deduplicated keys; run with ``await queue.run(reconcile, workers)``."""

    def __init__(self, backoff: float = 1.0, backoff_max: float = 120.0) -> None:
        self.backoff, self.backoff_max = backoff, backoff_max
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._counter = 0
        self._busy: set[K] = set()
        self._again: dict[K, float] = {}
        self._failures: dict[K, int] = {}
        self._changed: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._changed is None:  # created lazily, inside the running loop
            self._changed = asyncio.Event()
        return self._changed

    def add(self, key: K, delay: float = 0.0) -> None:
        """Reconcile ``key`` in ``delay`` seconds, or sooner if it is already due sooner."""
        when = asyncio.get_running_loop().time() + max(0.0, delay)
        if key in self._busy:
            self._again[key] = min(when, self._again.get(key, when))
            return
        if key in self._due and self._due[key] <= when:
            return
        self._due[key] = when
        self._counter += 1
        heapq.heappush(self._heap, (when, self._counter, key))
        self._event().set()

    def __len__(self) -> int:
        """Keys waiting (not counting those being reconciled)."""
        return len(self._due)

    def failures(self, key: K) -> int:
        """Consecutive failed reconciles of ``key`` (0 after a success)."""
        return self._failures.get(key, 0)

    async def _next(self) -> K:
        loop = asyncio.get_running_loop()
        while True:
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # superseded by an earlier add
            wait = self._heap[0][0] - loop.time() if self._heap else None
            if wait is not None and wait <= 0:
                _, _, key = heapq.heappop(self._heap)
                del self._due[key]
                return key
            self._event().clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event().wait(), timeout=wait)

    async def _work(self, reconcile: Reconcile[K]) -> None:
        while True:
            key = await self._next()
            self._busy.add(key)
            try:
                delay = await reconcile(key)
            except asyncio.CancelledError:
                self._busy.discard(key)
                self._again.pop(key, None)
                self.add(key)
                raise
            except Exception as exc:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(self.backoff * 2 ** (failures - 1), self.backoff_max)
                log.warning("reconciling %s failed (retry in %.1fs): %r", key, delay, exc)
                log.debug("reconcile failure", exc_info=True)
            else:
                self._failures.pop(key, None)
            finally:
                self._busy.discard(key)
            again = self._again.pop(key, None)
            if again is not None:
                self.add(key, again - asyncio.get_running_loop().time())
            if delay is not None:
                self.add(key, delay)

    async def run(self, reconcile: Reconcile[K], workers: int) -> None:
        """Reconcile keys with ``workers`` concurrent workers until cancelled."""
        async with asyncio.TaskGroup() as group:
            for index in range(workers):
                group.create_task(self._work(reconcile), name=f"reconcile-worker-{index}")
