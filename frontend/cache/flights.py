"""Chunks in flight: identical rows share one evaluation, per batch, without tasks.

A request's cache misses for one model version travel to its queue as ONE
chunk, exactly as without a cache; the chunk's future is registered here as a
``Flight`` under every missed row's key (with the row's index in the chunk).
A later request whose row has the same key joins that flight instead of
queueing the row again: its answer is the flight's output at that index. When
the flight lands, one callback fills the cache from its outputs and forgets the
keys. So the cost per row is a hash and two dictionary lookups, and there is
no asyncio task, ``shield`` or exception per row -- the per-row tasks were what
made the cache collapse under overload (a profile put 30% of the frontend's
time in them).

A flight counts the requests that wait on it. A request that leaves (its
deadline passed, its client went away) leaves its flights; the last to leave
cancels the chunk, so its rows are dropped from the queue before they reach a
model. A flight that others still wait on keeps going.

The registry is bounded by the queues: every flight is a chunk that is queued
or in a batch, and queues are bounded in rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import Any

import numpy as np

Fill = Callable[[Sequence[Any], np.ndarray], None]
"""What a landed flight does with its outputs: ``fill(keys, outputs)``."""


class Flight:
    """One chunk's future, and how many requests wait on it."""

    __slots__ = ("future", "waiters")

    def __init__(self, future: asyncio.Future[np.ndarray]) -> None:
        self.future = future
        self.waiters = 1

    def join(self) -> None:
        self.waiters += 1

    def leave(self) -> None:
        """One waiter fewer; the last one cancels the chunk if it has not landed."""
        self.waiters -= 1
        if self.waiters <= 0 and not self.future.done():
            self.future.cancel()


class Flights:
    """Keys in flight: which flight evaluates each, and at which index."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, tuple[Flight, int]] = {}

    def find(self, key: Hashable) -> tuple[Flight, int] | None:
        """The flight evaluating ``key`` and the row's index in it, if one is on its way."""
        entry = self._pending.get(key)
        if entry is None or entry[0].future.done():
            return None
        return entry

    def any_of(self, keys: Sequence[Hashable]) -> bool:
        """Whether some of ``keys`` are registered (in flight, or landed a moment ago)."""
        return any(map(self._pending.__contains__, keys))

    def start(
        self, keys: Sequence[Hashable], future: asyncio.Future[np.ndarray], fill: Fill
    ) -> Flight:
        """Register the chunk evaluating ``keys`` (row ``j`` for ``keys[j]``)."""
        flight = Flight(future)
        pending = self._pending
        for index, key in enumerate(keys):
            pending[key] = (flight, index)
        future.add_done_callback(partial(self._landed, keys, flight, fill))
        return flight

    def _landed(
        self,
        keys: Sequence[Hashable],
        flight: Flight,
        fill: Fill,
        future: asyncio.Future[np.ndarray],
    ) -> None:
        pending = self._pending
        pop = pending.pop
        for key in keys:
            entry = pop(key, None)
            if entry is not None and entry[0] is not flight:
                pending[key] = entry  # a later flight's (this one had landed): keep it
        if future.cancelled() or future.exception() is not None:
            return  # nothing to store; the error reached its waiters through the future
        fill(keys, future.result())
