"""The disabled cache: every request is evaluated, nothing is stored or shared.

Turning the cache off for an app means its model is evaluated for every query:
for a model with side effects or randomness (sampling, A/B logging), coalescing
identical queries would be caching by another name, so it is off too. Misses
are still counted, so a disabled cache reads as a hit ratio of 0 in metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from clipper.frontend.cache.base import Cached, CacheStats, Found, PredictionCache
from clipper.frontend.cache.flights import Flight
from clipper.frontend.cache.keys import CacheKey, RowKey


class NullCache(PredictionCache):
    enabled = False

    def __init__(self) -> None:
        self._misses = 0

    async def get(self, key: CacheKey) -> Cached | None:
        self._misses += 1
        return None

    async def put(self, key: CacheKey, value: np.ndarray) -> None:
        return None

    async def lookup(self, keys: Sequence[RowKey]) -> list[Found]:
        self._misses += len(keys)
        return [None] * len(keys)

    def expect(self, keys: Sequence[RowKey], future: asyncio.Future[np.ndarray]) -> Flight:
        return Flight(future)  # not registered: nothing joins it, nothing is stored

    async def discard(self, model: str, version: str | None = None) -> int:
        return 0

    async def clear(self) -> None:
        return None

    @property
    def stats(self) -> CacheStats:
        return CacheStats(misses=self._misses)
