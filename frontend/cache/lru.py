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

Nothing the cache keeps is an object the garbage collector tracks: keys are
packed ``bytes`` (``RowKey``), values are numpy arrays and scalars, stored as
they are (no ``(value, size, expires)`` tuple); an entry's size is computed
again from its value, and only text values and a TTL keep a number on the side,
in dicts of bytes to numbers. A new tuple is tracked until a collection looks
at it, so tuples per entry (which live long) were walked by young collections
and moved into the oldest generation, whose full collections walk the whole
cache (7-30 ms for 147,000 entries). Under ``benchmarks/overload.py`` (16 rows x
16 connections, 10 s) the collector took 10.7% of the cache-on frontend's CPU
against 8.0% with the cache off; with nothing tracked, 6.2% against 9.6%.
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
from clipper.frontend.cache.keys import CacheKey, RowKey, owner

ENTRY_OVERHEAD = 448
"""Bytes per entry besides the array data: key, ndarray header, OrderedDict node:
about 440 bytes measured with tracemalloc on CPython 3.11 and numpy 2.4 when an
entry was a tuple of key tuple, array, size and expiry; packed keys and bare
values take less, so the bound errs on the safe side."""


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
        self._entries: OrderedDict[RowKey, Cached] = OrderedDict()
        self._text_bytes: dict[RowKey, int] = {}
        """The text elements' bytes of entries that hold text (BYTES outputs)."""
        self._expires: dict[RowKey, float] = {}
        """When each entry expires, with a TTL."""
        self._flights = Flights()
        self._bytes = 0
        self._hits = self._misses = self._coalesced = self._evictions = self._expirations = 0

    async def get(self, key: CacheKey) -> Cached | None:
        value = self._lookup(key.packed)
        if value is None:
            self._misses += 1
        else:
            self._hits += 1
        return value

    async def put(self, key: CacheKey, value: np.ndarray) -> None:
        self._store(key.packed, frozen_copy(value))

    async def lookup(self, keys: Sequence[RowKey]) -> list[Found]:
        """``_lookup`` inlined and the counters added once: this runs for every row.
        A request none of whose rows is stored or in flight (every row of a stream
        without repeats) is answered by two C loops over its keys."""
        entries = self._entries
        if not any(map(entries.__contains__, keys)) and not self._flights.any_of(keys):
            self._misses += len(keys)
            return [None] * len(keys)
        found: list[Found] = []
        append = found.append
        get = entries.get
        find = self._flights.find
        hits = coalesced = misses = 0
        for key in keys:
            value = get(key)
            if value is not None and (value := self._fresh(key, value)) is not None:
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
        """Store a landed chunk's rows: ``_store`` row by row, unrolled (sizes from
        the chunk's dtype), because it runs for every row of every miss.

        A 1-D output's rows (class labels, scores) are stored as the numpy scalars
        that indexing gives, which own their value and cannot be changed: no copy
        and no array per row, and the answer is what the model's own chunk gives
        a row without the cache. Other rows are read-only copies of their own, so a
        stored value never keeps the chunk's buffer alive nor aliases it."""
        if outputs.dtype.hasobject or self.ttl_seconds:  # text, records with text; a TTL
            for key, output in zip(keys, outputs, strict=True):
                self._store(key, frozen_copy(output))
            return
        if not len(outputs):
            return
        size = outputs[0].nbytes + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        if outputs.ndim == 1 and outputs.dtype.names is None:
            values: list[Cached] = list(outputs)
        else:
            values = [frozen_copy(output) for output in outputs]
        entries = self._entries
        if any(map(entries.__contains__, keys)):  # some stored meanwhile: replace them
            for key in keys:
                if key in entries:
                    self._drop(key)
        entries.update(zip(keys, values, strict=True))  # C loops: runs for every missed row
        self._bytes += size * len(keys)
        self._evict()

    async def discard(self, model: str, version: str | None = None) -> int:
        doomed = [k for k in self._entries if _owned(k, model, version)]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def clear(self) -> None:
        self._entries.clear()
        self._text_bytes.clear()
        self._expires.clear()
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
        value = self._entries.get(key)
        return None if value is None else self._fresh(key, value)

    def _fresh(self, key: RowKey, value: Cached) -> Cached | None:
        """A found entry's value, now the most recently used; ``None`` if it expired."""
        if self._expires and self._expires[key] <= self._clock():
            self._drop(key)
            self._expirations += 1
            return None
        self._entries.move_to_end(key)
        return value

    def _store(self, key: RowKey, value: Cached) -> None:
        if key in self._entries:
            self._drop(key)
        text = text_bytes(value)
        size = value.nbytes + ENTRY_OVERHEAD + text
        if size > self.max_bytes:
            return
        self._entries[key] = value
        if text:
            self._text_bytes[key] = text
        if self.ttl_seconds:
            self._expires[key] = self._clock() + self.ttl_seconds
        self._bytes += size
        self._evict()

    def _evict(self) -> None:
        entries = self._entries
        side = self._text_bytes or self._expires
        evicted = 0
        while self._bytes > self.max_bytes:
            key, value = entries.popitem(last=False)
            if side:
                self._forget(key, value)
            else:
                self._bytes -= value.nbytes + ENTRY_OVERHEAD
            evicted += 1
        self._evictions += evicted

    def _drop(self, key: RowKey) -> None:
        self._forget(key, self._entries.pop(key))

    def _forget(self, key: RowKey, value: Cached) -> None:
        """Account for an entry that left ``_entries``."""
        self._bytes -= value.nbytes + ENTRY_OVERHEAD
        if self._text_bytes:
            self._bytes -= self._text_bytes.pop(key, 0)
        if self._expires:
            self._expires.pop(key, None)


def _owned(key: RowKey, model: str, version: str | None) -> bool:
    owner_model, owner_version = owner(key)
    return owner_model == model and version in (None, owner_version)


def frozen_copy(value: np.ndarray) -> np.ndarray:
    """A read-only copy that owns its memory."""
    out = np.array(value, copy=True)
    out.flags.writeable = False
    return out


def text_bytes(value: Cached) -> int:
    """Bytes of the text elements a value holds (BYTES outputs, records with text)."""
    if value.dtype.names is not None and value.dtype.hasobject:  # records with text
        size = 0
        for name in value.dtype.names:
            part = np.asarray(np.asarray(value)[name])
            if part.dtype.kind == "O":
                size += sum(sys.getsizeof(item) for item in part.flat)
        return size
    if value.dtype.kind == "O":
        return sum(sys.getsizeof(item) for item in np.asarray(value).flat)
    return 0


def entry_size(value: Cached) -> int:
    """Estimated bytes an entry holds (text elements of BYTES outputs included)."""
    return value.nbytes + ENTRY_OVERHEAD + text_bytes(value)
