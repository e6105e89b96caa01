"""Recent queries, remembered so that a label can be sent later by query id.

A query id names one answered row. The store keeps what learning needs and
nothing else -- the app, the context, the policy's ``Selection`` and each
answering model's output row -- so a label costs no model evaluation. It is
bounded in entries, oldest forgotten first, and an id is used up by its
feedback (a second label for the same query would count twice).

Ids start at a random 52-bit offset per process, so with several frontend
replicas behind one address a label sent to the wrong one is almost surely an
unknown id (404), not another query's.
"""

from __future__ import annotations

import itertools
import random
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from clipper.common.errors import NotFound
from clipper.frontend.selection import Selection


@dataclass(frozen=True, slots=True)
class Remembered:
    app: str
    context: str
    selection: Selection
    outputs: dict[str, np.ndarray]


class FeedbackStore:
    def __init__(self, capacity: int, seed: int | None = None) -> None:
        self.capacity = capacity
        start = random.Random(seed).getrandbits(20) << 32
        self._ids = itertools.count(start + 1)
        # An OrderedDict, not a dict: evicting the oldest of a plain dict means
        # ``next(iter(d))``, which skips every slot deleted before it -- quadratic
        # once the store is full. ``popitem(last=False)`` is O(1).
        self._entries: OrderedDict[int, Remembered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def new_id(self) -> int:
        return next(self._ids)

    def remember(self, query_id: int, entry: Remembered) -> None:
        if self.capacity <= 0:
            return
        entries = self._entries
        entries[query_id] = entry
        if len(entries) > self.capacity:
            entries.popitem(last=False)

    def get(self, app: str, query_id: int) -> Remembered:
        """The query's record; ``NotFound`` if unknown, used up or another app's."""
        entry = self._entries.get(query_id)
        if entry is None or entry.app != app:
            raise NotFound(
                f"unknown query id {query_id} for app '{app}': it was never answered here, "
                "its feedback was already received, it is older than the last "
                f"{self.capacity} queries, or its answer was a default"
            )
        return entry

    def forget(self, query_id: int) -> None:
        """Use the id up: its feedback has been received."""
        self._entries.pop(query_id, None)
