"""The prediction cache's interface and its statistics.

The interface is async although the in-process LRU never waits: a cache shared
between frontend replicas (e.g. Redis) would, and the frontend should not have
to change when one is added. A miss is ``None`` -- never a sentinel value that
could also be a prediction (MLServer's ``""``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from clipper.frontend.cache.keys import CacheKey

Compute = Callable[[], Awaitable[np.ndarray]]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of the counters, for metrics and ``clipper status``."""

    hits: int = 0
    """Lookups answered from the cache."""
    misses: int = 0
    """Lookups that found nothing (in ``get_or_compute``: that started an evaluation)."""
    coalesced: int = 0
    """``get_or_compute`` calls that joined an identical evaluation already in flight."""
    evictions: int = 0
    """Entries dropped to stay within ``max_bytes`` (least recently used first)."""
    expirations: int = 0
    """Entries found older than the TTL and dropped (they also count as misses)."""
    entries: int = 0
    bytes: int = 0
    """Estimated memory held: the arrays' bytes plus a per-entry overhead."""
    max_bytes: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.misses + self.coalesced

    @property
    def hit_ratio(self) -> float:
        """Share of lookups served without a new evaluation (hits and coalesced)."""
        return (self.hits + self.coalesced) / self.lookups if self.lookups else 0.0


class PredictionCache(ABC):
    """Predictions by ``CacheKey``; returned arrays are read-only and shared."""

    enabled: bool = True
    """False for the disabled cache: the frontend can skip computing keys."""

    @abstractmethod
    async def get(self, key: CacheKey) -> np.ndarray | None:
        """The cached prediction, or ``None`` on a miss."""

    @abstractmethod
    async def put(self, key: CacheKey, value: np.ndarray) -> None:
        """Store a read-only copy of ``value`` (unless it is larger than the cache)."""

    @abstractmethod
    async def get_or_compute(self, key: CacheKey, compute: Compute) -> tuple[np.ndarray, bool]:
        """The prediction and whether it came without a new evaluation.

        On a miss, ``compute()`` runs once, however many identical requests arrive
        while it is in flight; they all get its result, or all its exception (and
        nothing is cached). A caller that is cancelled leaves the evaluation running
        for the others; it is cancelled only when no caller waits for it anymore.
        """

    @abstractmethod
    async def discard(self, model: str, version: str | None = None) -> int:
        """Drop a model's entries (one version, or all); returns how many."""

    @abstractmethod
    async def clear(self) -> None:
        """Drop every entry (the counters keep counting)."""

    @property
    @abstractmethod
    def stats(self) -> CacheStats: ...
