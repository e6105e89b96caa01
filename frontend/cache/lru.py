"""An in-process LRU prediction cache, bounded in bytes, with an optional TTL.

True LRU: every hit moves the entry to the recent end of an ``OrderedDict``
and eviction pops from the old end, so a hot entry survives a stream of
one-off queries (FIFO eviction, MLServer's, would drop it). The bound is on
memory, not on a count of entries, because outputs range from a class label to
an image: each entry costs its array's bytes (plus the text for BYTES outputs),
its key's length (a small row's key holds the row's bytes:
``clipper.frontend.cache.keys``) and ``ENTRY_OVERHEAD`` for the key's and the
array's headers and the dict slot. A value larger than the whole cache is served
but not stored.

Stored values are read-only copies: a caller that mutates the array it was
given cannot corrupt what later callers get, and a row sliced from a batch's
output does not keep the whole batch alive. A model with several outputs stores
a record per row (``clipper.frontend.records``): every output, in one entry.
The TTL (for models whose answers go stale) is checked lazily on lookup against
an injectable clock.

What the frontend stores is a landed chunk's rows (``_fill``), and two rules
keep that cheap:

* **Admission once full** (``clipper.frontend.cache.doorkeeper``): a chunk that
  fits in the room left is stored; one that does not is stored only for the
  rows sighted recently, so a stream with no repeats stops inserting and
  evicting once the cache is full. ``put`` (an explicit store) is not gated.
  The doorkeeper's ``doorkeeper_bytes`` are set aside within ``max_bytes`` when
  it is first needed.
* **One block per chunk, for outputs of more than one dimension** (class
  scores, embeddings): the chunk's stored rows are copied once into one
  read-only array, and each entry is a row view of it, instead of a copy per
  row. A block's bytes count in full until its last row leaves: a hot row
  keeps its whole block charged (and so alive), and the LRU evicts more to make
  room, so the bound holds whatever rows survive; at worst the cache holds fewer
  entries. A row of a 1-D output is stored as the numpy scalar that indexing
  gives, which owns its value: no block needed.

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
from itertools import compress

import numpy as np

from clipper.frontend.cache.base import Cached, CacheStats, Found, PredictionCache
from clipper.frontend.cache.doorkeeper import HASH_BYTES, Doorkeeper
from clipper.frontend.cache.flights import Flight, Flights
from clipper.frontend.cache.keys import CacheKey, RowKey, owner

ENTRY_OVERHEAD = 448
"""Bytes per entry besides the array data and the key's length: key and ndarray
headers, OrderedDict node:
about 440 bytes measured with tracemalloc on CPython 3.11 and numpy 2.4 when an
entry was a tuple of key tuple, array, size and expiry; packed keys and bare
values take less, so the bound errs on the safe side."""

DOORKEEPER_SHARE = 16
"""The doorkeeper may take up to ``max_bytes / DOORKEEPER_SHARE`` (by default)."""
MIN_DOORKEEPER_HASHES = 16
"""A cache whose share would hold fewer hashes per generation has no doorkeeper."""


class LRUCache(PredictionCache):
    def __init__(
        self,
        max_bytes: int,
        ttl_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        doorkeeper_bytes: int | None = None,
    ) -> None:
        """``doorkeeper_bytes``: what admission once full may set aside (0: none, every
        landed row is stored); by default ``max_bytes / DOORKEEPER_SHARE``, or none if
        that holds fewer than ``MIN_DOORKEEPER_HASHES`` hashes per generation."""
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive; use NullCache to disable caching")
        if ttl_seconds is not None and not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        if doorkeeper_bytes is None:
            doorkeeper_bytes = max_bytes // DOORKEEPER_SHARE
            if doorkeeper_bytes < 2 * HASH_BYTES * MIN_DOORKEEPER_HASHES:
                doorkeeper_bytes = 0
        if not 0 <= doorkeeper_bytes < max_bytes:
            raise ValueError(
                f"doorkeeper_bytes must be at least 0 and below max_bytes ({max_bytes}), "
                f"got {doorkeeper_bytes}"
            )
        if 0 < doorkeeper_bytes < 2 * HASH_BYTES:
            raise ValueError(f"doorkeeper_bytes must be 0 or at least {2 * HASH_BYTES}")
        self.max_bytes = max_bytes
        self.doorkeeper_bytes = doorkeeper_bytes
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[RowKey, Cached] = OrderedDict()
        self._text_bytes: dict[RowKey, int] = {}
        """The text elements' bytes of entries that hold text (BYTES outputs)."""
        self._expires: dict[RowKey, float] = {}
        """When each entry expires, with a TTL."""
        self._blocks: dict[int, int] = {}
        """Live rows per block (by the block's id): its bytes leave with its last row."""
        self._doorkeeper: Doorkeeper | None = None
        """Created, and its bytes set aside, when a landed chunk first does not fit."""
        self._flights = Flights()
        self._bytes = 0
        self._hits = self._misses = self._coalesced = self._evictions = self._expirations = 0
        self._kept_out = 0

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
        """Store a landed chunk's rows: the rows the doorkeeper admits once the cache is
        full, then ``_store`` row by row, unrolled (sizes from the chunk's dtype, C
        loops over the rows), because this runs for every row of every miss."""
        count = len(outputs)
        if not count:
            return
        size = outputs[0].nbytes + ENTRY_OVERHEAD
        key_bytes = sum(map(len, keys))
        if size + key_bytes // count > self.max_bytes:
            return
        if self._bytes + size * count + key_bytes > self.max_bytes and self.doorkeeper_bytes:
            admitted = self._admit(keys)
            if not any(admitted):
                return
            if not all(admitted):
                keys = list(compress(keys, admitted))
                outputs = outputs[np.fromiter(admitted, bool, count)]  # a copy of its own
                outputs.flags.writeable = False
                count = len(keys)
                key_bytes = sum(map(len, keys))
        if outputs.dtype.hasobject or self.ttl_seconds:  # text, records with text; a TTL
            for key, output in zip(keys, outputs, strict=True):
                self._store(key, frozen_copy(output))
            return
        entries = self._entries
        if any(map(entries.__contains__, keys)):  # some stored meanwhile: replace them
            for key in keys:
                if key in entries:
                    self._drop(key)
        if outputs.ndim == 1 and outputs.dtype.names is None:
            values: list[Cached] = list(outputs)  # numpy scalars, which own their value
            self._bytes += size * count + key_bytes
        elif outputs.dtype.names is None:
            block = outputs if outputs.base is None and not outputs.flags.writeable else None
            block = frozen_copy(outputs) if block is None else block  # the admitted rows' copy
            values = list(block)  # row views of the one block
            self._blocks[id(block)] = count
            self._bytes += block.nbytes + ENTRY_OVERHEAD * count + key_bytes
        else:  # records: a read-only copy per row, as ``put`` stores them
            values = [frozen_copy(output) for output in outputs]
            self._bytes += size * count + key_bytes
        entries.update(zip(keys, values, strict=True))  # C loops: runs for every missed row
        self._evict()

    def _admit(self, keys: Sequence[RowKey]) -> list[bool]:
        """Which of a landed chunk's rows to store, once it does not fit."""
        if self._doorkeeper is None:
            self._doorkeeper = Doorkeeper(self.doorkeeper_bytes)
            self._bytes += self._doorkeeper.max_bytes  # set aside within the bound
            self._evict()
        admitted = self._doorkeeper.admit(keys)
        self._kept_out += admitted.count(False)
        return admitted

    async def discard(self, model: str, version: str | None = None) -> int:
        doomed = [k for k in self._entries if _owned(k, model, version)]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def clear(self) -> None:
        """Drop every entry and the doorkeeper (the counters keep counting)."""
        self._entries.clear()
        self._text_bytes.clear()
        self._expires.clear()
        self._blocks.clear()
        self._doorkeeper = None
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
            kept_out=self._kept_out,
            doorkeeper_bytes=0 if self._doorkeeper is None else self._doorkeeper.max_bytes,
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
        size = value.nbytes + ENTRY_OVERHEAD + text + len(key)
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
        side = self._text_bytes or self._expires or self._blocks
        evicted = 0
        while self._bytes > self.max_bytes and entries:
            key, value = entries.popitem(last=False)
            if side:
                self._forget(key, value)
            else:
                self._bytes -= value.nbytes + ENTRY_OVERHEAD + len(key)
            evicted += 1
        self._evictions += evicted

    def _drop(self, key: RowKey) -> None:
        self._forget(key, self._entries.pop(key))

    def _forget(self, key: RowKey, value: Cached) -> None:
        """Account for an entry that left ``_entries``."""
        block = value.base
        live = None if block is None else self._blocks.get(id(block))
        if block is not None and live is not None:  # a row view: its block may stay
            if live > 1:
                self._blocks[id(block)] = live - 1
            else:
                del self._blocks[id(block)]
                self._bytes -= block.nbytes
            self._bytes -= ENTRY_OVERHEAD + len(key)
            return
        self._bytes -= value.nbytes + ENTRY_OVERHEAD + len(key)
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


def entry_size(key: RowKey, value: Cached) -> int:
    """Estimated bytes an entry holds (its key and the text elements of BYTES outputs
    included)."""
    return value.nbytes + ENTRY_OVERHEAD + len(key) + text_bytes(value)
