"""An in-process LRU prediction cache, bounded in bytes, with an optional TTL.

True LRU: every hit moves the entry to the recent end of an ``OrderedDict``
and eviction pops from the old end, so a hot entry survives a stream of
one-off queries (FIFO eviction, MLServer's, would drop it). The bound is on
memory, not on a count of entries, because outputs range from a class label to
an image: each entry costs its array's bytes (plus the text for BYTES outputs)
and ``ENTRY_OVERHEAD`` for the key, the array header and the dict slot. A value
larger than the whole cache is served but not stored.

Stored values are read-only copies: a caller that mutates the array it was
given cannot corrupt what later callers get, and a row sliced from a batch's
output does not keep the whole batch alive. A model with several outputs stores
a record per row (``clipper.frontend.records``): every output, in one entry.
The TTL (for models whose answers go stale) is checked lazily on lookup against
an injectable clock.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from clipper.frontend.cache.base import Cached, CacheStats, Found, PredictionCache
from clipper.frontend.cache.flights import Flight, Flights
from clipper.frontend.cache.keys import CacheKey, RowKey

ENTRY_OVERHEAD = 448
"""Bytes per entry besides the array data: key tuple and digest, ndarray header,
OrderedDict node, entry tuple: about 440 bytes measured with tracemalloc on
CPython 3.11 and numpy 2.4."""


_Key = tuple[str, str, bytes, bytes]
"""A ``CacheKey`` stored as a plain tuple: equal to it and hashed alike, so lookups
by ``CacheKey`` find it, but the garbage collector stops tracking a plain tuple of
strings and bytes (never a ``NamedTuple``). The same goes for the entry, a plain
``(value, size, expires)`` tuple (arrays are not tracked). A full cache of 100,000
entries then adds nothing to each full collection's work; as NamedTuples they made
the cache's collections a tail-latency cost under load (``benchmarks/overload.py``)."""
_Entry = tuple[Cached, int, float]


class LRUCache(PredictionCache):
    def __init__(
        self,
        max_bytes: int,
        ttl_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive; use NullCache to disable caching")
        if ttl_seconds is not None and not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._flights = Flights()
        self._bytes = 0
        self._hits = self._misses = self._coalesced = self._evictions = self._expirations = 0

    async def get(self, key: CacheKey) -> Cached | None:
        value = self._lookup(key)
        if value is None:
            self._misses += 1
        else:
            self._hits += 1
        return value

    async def put(self, key: CacheKey, value: np.ndarray) -> None:
        self._store(key, frozen_copy(value))

    async def lookup(self, keys: Sequence[RowKey]) -> list[Found]:
        """``_lookup`` inlined and the counters added once: this runs for every row."""
        found: list[Found] = []
        append = found.append
        get = self._entries.get
        find = self._flights.find
        hits = coalesced = misses = 0
        for key in keys:
            entry = get(key)
            if entry is not None and (value := self._fresh(key, entry)) is not None:
                hits += 1
                append(value)
            elif (flying := find(key)) is not None:
                coalesced += 1
                append(flying)
            else:
                misses += 1
                append(None)
        self._hits += hits
        self._coalesced += coalesced
        self._misses += misses
        return found

    def expect(self, keys: Sequence[RowKey], future: asyncio.Future[np.ndarray]) -> Flight:
        return self._flights.start(keys, future, self._fill)

    def _fill(self, keys: Sequence[RowKey], outputs: np.ndarray) -> None:
        """Store a landed chunk's rows: ``_store`` row by row, unrolled (one clock read,
        sizes from the chunk's dtype), because it runs for every row of every miss.

        A 1-D output's rows (class labels, scores) are stored as the numpy scalars
        that indexing gives, which own their value and cannot be changed: no copy
        and no array per row, and the answer is what the model's own chunk gives
        a row without the cache. Other rows are read-only copies of their own, so a
        stored value never keeps the chunk's buffer alive nor aliases it."""
        if outputs.dtype.hasobject:  # text, or records with a text output
            for key, output in zip(keys, outputs, strict=True):
                self._store(key, frozen_copy(output))
            return
        entries = self._entries
        size = outputs[0].nbytes + ENTRY_OVERHEAD if len(outputs) else 0
        if size > self.max_bytes:
            return
        expires = self._clock() + self.ttl_seconds if self.ttl_seconds else float("inf")
        if outputs.ndim == 1 and outputs.dtype.names is None:
            values: list[Cached] = list(outputs)
        else:
            values = [frozen_copy(output) for output in outputs]
        added = 0
        pop = entries.pop
        for key, value in zip(keys, values, strict=True):
            old = pop(key, None)
            if old is not None:
                added -= old[1]
            entries[key] = (value, size, expires)
            added += size
        self._bytes += added
        while self._bytes > self.max_bytes:
            _, evicted = entries.popitem(last=False)
            self._bytes -= evicted[1]
            self._evictions += 1

    async def discard(self, model: str, version: str | None = None) -> int:
        doomed = [k for k in self._entries if k[0] == model and version in (None, k[1])]
        for key in doomed:
            self._bytes -= self._entries.pop(key)[1]
        return len(doomed)

    async def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    @property
    def stats(self) -> CacheStats:
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            coalesced=self._coalesced,
            evictions=self._evictions,
            expirations=self._expirations,
            entries=len(self._entries),
            bytes=self._bytes,
            max_bytes=self.max_bytes,
        )

    def _lookup(self, key: RowKey) -> Cached | None:
        entry = self._entries.get(key)
        return None if entry is None else self._fresh(key, entry)

    def _fresh(self, key: RowKey, entry: _Entry) -> Cached | None:
        """A found entry's value, now the most recently used; ``None`` if it expired."""
        if entry[2] <= self._clock():
            self._bytes -= self._entries.pop(key)[1]
            self._expirations += 1
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def _store(self, key: RowKey, value: np.ndarray) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        size = entry_size(value)
        if size > self.max_bytes:
            return
        expires = self._clock() + self.ttl_seconds if self.ttl_seconds else float("inf")
        if type(key) is not tuple:  # a CacheKey: stored as a plain tuple (see _Key)
            key = (key[0], key[1], key[2], key[3])
        self._entries[key] = (value, size, expires)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted[1]
            self._evictions += 1


def frozen_copy(value: np.ndarray) -> np.ndarray:
    """A read-only copy that owns its memory."""
    out = np.array(value, copy=True)
    out.flags.writeable = False
    return out


def entry_size(value: np.ndarray) -> int:
    """Estimated bytes an entry holds (text elements of BYTES outputs included)."""
    size = value.nbytes + ENTRY_OVERHEAD
    if value.dtype.names is not None and value.dtype.hasobject:  # records with text
        for name in value.dtype.names:
            part = np.asarray(value[name])
            if part.dtype.kind == "O":
                size += sum(sys.getsizeof(item) for item in part.flat)
    elif value.dtype.kind == "O":
        size += sum(sys.getsizeof(item) for item in value.flat)
    return size
