"""The prediction cache's interface and its statistics.

The interface is async although the in-process LRU never waits: a cache shared
between frontend replicas (e.g. Redis) would, and the frontend should not have
to change when one is added. A miss is ``None`` -- never a sentinel value that
could also be a prediction (MLServer's ``""``).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clipper.frontend.cache.flights import Flight
from clipper.frontend.cache.keys import CacheKey, RowKey

Cached = np.ndarray | np.generic
"""A stored prediction: a read-only array, or the numpy scalar that is a row of a
1-D output (immutable, as a row of that output is without the cache)."""

Found = Cached | tuple[Flight, int] | None
"""What ``lookup`` found for one key: the cached prediction, the flight already
evaluating it and the row's index there, or ``None`` (a miss to evaluate)."""


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of the counters, for metrics and ``clipper status``."""

    hits: int = 0
    """Lookups answered from the cache."""
    misses: int = 0
    """Lookups that found nothing (that started an evaluation)."""
    coalesced: int = 0
    """Lookups that joined an identical evaluation already in flight."""
    evictions: int = 0
    """Entries dropped to stay within ``max_bytes`` (least recently used first)."""
    expirations: int = 0
    """Entries found older than the TTL and dropped (they also count as misses)."""
    entries: int = 0
    bytes: int = 0
    """Estimated memory held: the arrays' bytes plus a per-entry overhead, and what
    the doorkeeper sets aside."""
    max_bytes: int = 0
    kept_out: int = 0
    """Landed rows not stored because the cache was full and the doorkeeper had not
    sighted them before (a stream with no repeats: nearly every row once full)."""
    doorkeeper_bytes: int = 0
    """Bytes set aside for the doorkeeper (within ``bytes``); 0 until it is needed."""

    @property
    def lookups(self) -> int:
        return self.hits + self.misses + self.coalesced

    @property
    def hit_ratio(self) -> float:
        """Share of lookups served without a new evaluation (hits and coalesced)."""
        return (self.hits + self.coalesced) / self.lookups if self.lookups else 0.0


class PredictionCache(ABC):
    """Predictions by ``CacheKey``; returned values are read-only and shared."""

    enabled: bool = True
    """False for the disabled cache: the frontend can skip computing keys."""

    @abstractmethod
    async def get(self, key: CacheKey) -> Cached | None:
        """The cached prediction, or ``None`` on a miss."""

    @abstractmethod
    async def put(self, key: CacheKey, value: np.ndarray) -> None:
        """Store a read-only copy of ``value`` (unless it is larger than the cache)."""

    @abstractmethod
    async def lookup(self, keys: Sequence[RowKey]) -> list[Found]:
        """For the rows of one request, in one pass: each key's prediction, the flight
        it can join, or ``None``. The caller evaluates the misses as one chunk and
        registers it with ``expect`` before it yields to the event loop."""

    @abstractmethod
    def expect(self, keys: Sequence[RowKey], future: asyncio.Future[np.ndarray]) -> Flight:
        """The chunk evaluating ``keys`` (its future resolves to their outputs, row
        ``j`` for ``keys[j]``): identical lookups join it until it lands, and its
        outputs fill the cache. Returns its flight, with the caller as a waiter."""

    @abstractmethod
    async def clear(self) -> None:
        """Drop every entry (the counters keep counting)."""

    @property
    @abstractmethod
    def stats(self) -> CacheStats: ...
