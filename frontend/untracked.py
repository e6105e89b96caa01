"""A byte-bounded, oldest-first map that the garbage collector never walks.

The frontend remembers every answered query for a while: the feedback store
(for labels by query id) and the Shadow store (a candidate's answers awaiting
those labels). Hundreds of thousands of small entries live there, and CPython's
full collections visit every tracked container and everything they hold. Held
in an ``OrderedDict``, three full feedback stores made each full collection of
the frontend take 50-150 ms on this 2-core machine: a pause of the event loop
that every request in flight waited through, which is what showed as caller
p99 spikes in ``benchmarks/shadow_mirroring.py`` (and in its A/A comparison).
Making the entries plain tuples (untracked after their first collection)
halved that, but the collector still walked the dict's 270,000 slots, touching
each key and value: a cache miss each.

So this map keeps nothing the collector walks:

- the values sit in a ring of slots that is a numpy object array, and their keys
  and sizes in integer arrays beside it. An ndarray is not a container the
  collector traverses, so the ring's contents are never visited;
- key -> position is a ``dict`` of ints to ints, which CPython does not track;
- each value must be a *flat* tuple of strings, numbers, arrays and ``None``:
  CPython stops tracking such a tuple at the first collection of its generation
  (a young one, within a few hundred allocations), so it never reaches the old
  generations that full collections walk. A tuple that holds another tuple is
  untracked only one level per collection of the generation it sits in, so it
  would linger there through several full collections: flatten it (see
  ``flatten``). A value that could be part of a reference cycle must not go in
  here: the collector would never see the cycle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_SLOTS = 1024


class UntrackedFifo:
    """``key (int) -> value (a flat tuple)``, oldest first, at most ``max_bytes`` counted."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.evictions = 0
        self.evicted_through = -1
        """The largest key evicted so far (keys that grow tell evicted from unknown)."""
        self._values: np.ndarray = np.empty(MIN_SLOTS, dtype=object)
        """The ring: a slot holds a value, or ``None`` (a hole, or free)."""
        self._keys = np.zeros(MIN_SLOTS, dtype=np.int64)
        self._sizes = np.zeros(MIN_SLOTS, dtype=np.int64)
        self._oldest = 0
        """Sequence number of the oldest slot still in the ring (live or a hole)."""
        self._next = 0
        """Sequence number the next entry gets."""
        self._where: dict[int, int] = {}
        """key -> sequence number; its slot is ``seq % len(ring)``."""

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: int) -> bool:
        return key in self._where

    def get(self, key: int) -> Any:
        seq = self._where.get(key)
        return None if seq is None else self._values[seq % len(self._values)]

    def put(self, key: int, value: tuple[Any, ...], nbytes: int) -> bool:
        """Keep ``value`` as the newest entry (replacing ``key``'s old one), then forget
        the oldest until the bound holds. False, and nothing kept, when ``nbytes``
        alone is over the bound."""
        if nbytes > self.max_bytes:
            return False
        self.pop(key)
        if self._next - self._oldest == len(self._values):
            self._relayout(grow=len(self._where) * 2 >= len(self._values))
        slot = self._next % len(self._values)
        self._values[slot], self._keys[slot], self._sizes[slot] = value, key, nbytes
        self._where[key] = self._next
        self._next += 1
        self.bytes += nbytes
        while self.bytes > self.max_bytes:
            self._evict_oldest()
        return True

    def pop(self, key: int) -> Any:
        """Remove ``key``'s entry; its value, or ``None``."""
        seq = self._where.pop(key, None)
        if seq is None:
            return None
        slot = seq % len(self._values)
        value = self._values[slot]
        self._values[slot] = None
        self.bytes -= int(self._sizes[slot])
        self._skip_holes()
        return value

    def _evict_oldest(self) -> None:
        self._skip_holes()
        slot = self._oldest % len(self._values)
        key = int(self._keys[slot])
        self._values[slot] = None
        self._oldest += 1
        del self._where[key]
        self.bytes -= int(self._sizes[slot])
        self.evictions += 1
        self.evicted_through = max(self.evicted_through, key)

    def _skip_holes(self) -> None:
        values, size = self._values, len(self._values)
        while self._oldest < self._next and values[self._oldest % size] is None:
            self._oldest += 1

    def _relayout(self, grow: bool) -> None:
        """A full ring: twice the slots when most hold entries, else the same number
        with the holes squeezed out (the live entries keep their order)."""
        size = len(self._values)
        order = [seq % size for seq in range(self._oldest, self._next)]
        live = [slot for slot in order if self._values[slot] is not None]
        new_size = size * 2 if grow else size
        values = np.empty(new_size, dtype=object)
        values[: len(live)] = self._values[live] if live else []
        keys, sizes = np.zeros(new_size, dtype=np.int64), np.zeros(new_size, dtype=np.int64)
        keys[: len(live)], sizes[: len(live)] = self._keys[live], self._sizes[live]
        self._values, self._keys, self._sizes = values, keys, sizes
        self._where = {int(key): seq for seq, key in enumerate(keys[: len(live)])}
        self._oldest, self._next = 0, len(live)


def flatten(groups: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """``[(a, b), (c, d)]`` as ``(a, b, c, d)``: groups of one width in one flat tuple."""
    return tuple(item for group in groups for item in group)


def groups(flat: tuple[Any, ...], width: int) -> list[tuple[Any, ...]]:
    """``flatten``'s inverse."""
    return [flat[i : i + width] for i in range(0, len(flat), width)]
