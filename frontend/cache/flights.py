"""Chunks in flight: identical rows share one evaluation, per batch, without tasks.

A request's cache misses for one model version travel to its queue as ONE
chunk, exactly as without a cache; the chunk's future is registered here as a
``Flight`` under every missed row's key.
A later request whose row has the same key joins that flight instead of
queueing the row again: its answer is the flight's output at that index. When
the flight lands, one callback fills the cache from its outputs and forgets the
keys. So the cost per row is a hash and a few dictionary operations, each in a
C loop over the chunk's keys (``map``, ``dict.update``), and there is no asyncio
task, ``shield``, exception or tuple per row -- the per-row tasks were what made
the cache collapse under overload (a profile put 30% of the frontend's time in
them). A key maps to its flight alone; the row's index in the chunk is looked up
when a request joins, which most chunks never see.

The cache is filled per model batch, not per chunk: a batch of single-row
requests lands as many chunks at once (their futures resolve in one loop), and
filling each alone paid the store's and the doorkeeper's fixed cost per row --
the largest cost left on the cache path of ``benchmarks/overload.py``'s 1 x 256
cell once keys stopped costing a SHA-256. A landed chunk forgets its keys at
once and queues its outputs; the first to land schedules one ``_store`` right
after the batch's other callbacks, which fills the cache from every chunk
queued, those with outputs of one kind as one chunk. A row looked up in between
misses (it is evaluated again, as a row arriving after the fill would not be).

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
from itertools import chain, repeat
from operator import is_
from typing import Any

import numpy as np

Fill = Callable[[Sequence[Any], np.ndarray], None]
"""What a landed flight does with its outputs: ``fill(keys, outputs)``."""


class Flight:
    """One chunk's future, and how many requests wait on it."""

    __slots__ = ("_index", "future", "keys", "waiters")

    def __init__(self, future: asyncio.Future[np.ndarray], keys: Sequence[Hashable] = ()) -> None:
        self.future = future
        self.keys = keys
        """The chunk's rows' keys, row ``j`` for ``keys[j]``."""
        self.waiters = 1
        self._index: dict[Hashable, int] | None = None

    def join(self) -> None:
        self.waiters += 1

    def leave(self) -> None:
        """One waiter fewer; the last one cancels the chunk if it has not landed."""
        self.waiters -= 1
        if self.waiters <= 0 and not self.future.done():
            self.future.cancel()

    def index(self, key: Hashable) -> int:
        """The row of ``key`` in the chunk: built on the first join, since most chunks
        are never joined."""
        if self._index is None:
            self._index = {key: index for index, key in enumerate(self.keys)}
        return self._index[key]


class Flights:
    """Keys in flight: which flight evaluates each."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, Flight] = {}
        self._landing: list[tuple[Sequence[Hashable], np.ndarray, Fill]] = []
        """Landed chunks whose outputs ``_store`` has yet to put in the cache."""

    def find(self, key: Hashable) -> tuple[Flight, int] | None:
        """The flight evaluating ``key`` and the row's index in it, if one is on its way."""
        flight = self._pending.get(key)
        if flight is None or flight.future.done():
            return None
        return flight, flight.index(key)

    def any_of(self, keys: Sequence[Hashable]) -> bool:
        """Whether some of ``keys`` are registered (in flight, or landed a moment ago)."""
        return any(map(self._pending.__contains__, keys))

    def start(
        self, keys: Sequence[Hashable], future: asyncio.Future[np.ndarray], fill: Fill
    ) -> Flight:
        """Register the chunk evaluating ``keys`` (row ``j`` for ``keys[j]``, each once)."""
        flight = Flight(future, keys)
        self._pending.update(zip(keys, repeat(flight)))  # a C loop, no object per row
        future.add_done_callback(partial(self._landed, flight, fill))
        return flight

    def _landed(self, flight: Flight, fill: Fill, future: asyncio.Future[np.ndarray]) -> None:
        keys, pending = flight.keys, self._pending
        popped = list(map(pending.pop, keys, repeat(None)))
        if not all(map(is_, popped, repeat(flight))):  # a later flight's keys (this had landed)
            for key, other in zip(keys, popped, strict=True):
                if other is not None and other is not flight:
                    pending[key] = other
        if future.cancelled() or future.exception() is not None:
            return  # nothing to store; the error reached its waiters through the future
        if not self._landing:
            future.get_loop().call_soon(self._store)  # after the batch's other chunks
        self._landing.append((keys, future.result(), fill))

    def _store(self) -> None:
        """Fill the cache from the chunks landed since the last call: those whose
        outputs are of one kind (and go to one cache) as one chunk."""
        landing, self._landing = self._landing, []
        if len(landing) == 1:
            keys, outputs, fill = landing[0]
            fill(keys, outputs)
            return
        kinds: dict[tuple[Any, ...], list[tuple[Sequence[Hashable], np.ndarray]]] = {}
        for keys, outputs, fill in landing:
            kinds.setdefault((fill, outputs.dtype, outputs.shape[1:]), []).append((keys, outputs))
        for (fill, _, _), chunks in kinds.items():
            joined = list(chain.from_iterable(keys for keys, _ in chunks))
            if len(chunks) == 1 or len(set(joined)) < len(joined):  # a key twice: one by one
                for keys, outputs in chunks:
                    fill(keys, outputs)
                continue
            outputs = np.concatenate([outputs for _, outputs in chunks])
            outputs.flags.writeable = False  # a copy of its own: the cache may keep it
            fill(joined, outputs)
