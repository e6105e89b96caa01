"""Recent queries, remembered so that a label can be sent later by query id.

A query id names one answered row. The store keeps what learning needs and
nothing else -- the context, the policy's ``Selection`` and each answering
model's output row -- so a label costs no model evaluation. An id is used up by
its feedback (a second label for the same query would count twice).

Memory is the risk, so the bound is in bytes, per app (``feedback_max_bytes``):
an entry costs its output rows' bytes plus fixed overheads for the objects
around them, so the bound also caps the number of entries (an entry count
alone would let a model with 1,000 float64 scores per row take 8 KB a query,
800 MB for 100,000 queries). Per app, so one busy app cannot evict another's
queries. Oldest forgotten first; evictions are counted, and bytes and entries
are exported (``stats``, read at scrape time). An evicted id is told apart
from an unknown one, so the client learns to send labels sooner.

The store keeps copies, never views: a model's answer to a batch is one
buffer, and a row that is a view of it would pin the whole batch's response
(and, behind it, the gRPC message) for as long as the row is remembered.

The garbage collector never walks the store (``clipper.frontend.untracked``):
each entry is a plain tuple of strings, numbers and arrays (``_Entry``) in a
ring the collector does not traverse. As dataclass instances in an
``OrderedDict`` (with their selections and dicts) three full stores of the
default size were about 600,000 tracked objects, and each full collection walked
them all: 50-150 ms during which no caller was answered (the caller p99 spikes
that the Shadow benchmark and its A/A comparison showed). ``get`` rebuilds a
``Remembered`` for the one query a label names.

Ids start at a random 52-bit offset per process, so with several frontend
replicas behind one address a label sent to the wrong one is almost surely an
unknown id (404), not another query's.
"""

from __future__ import annotations

import itertools
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipper.common.errors import NotFound
from clipper.frontend.selection import Selection
from clipper.frontend.untracked import UntrackedFifo, flatten, groups

ENTRY_OVERHEAD = 600
"""Bytes counted per entry besides its output arrays: the entry, its dict slots,
the selection, the id."""
ARRAY_OVERHEAD = 128
"""Bytes counted per output array besides its data (the ndarray object). With
both, an entry of one model's scalar output counts 736 bytes; tracemalloc
measures 720."""


@dataclass(frozen=True, slots=True)
class Remembered:
    context: str
    selection: Selection
    outputs: dict[str, np.ndarray]
    nbytes: int
    versions: Mapping[str, str]
    """The version of each model that answered (rollout analysis scores losses by it);
    shared between the rows of a request, never written."""


_Entry = tuple[Any, ...]
"""A remembered query as the store keeps it, one flat tuple of strings, numbers and
arrays (``clipper.frontend.untracked`` says why flat): the context, the bytes
counted, then the selection's models, its weights, the output rows and the
versions, each as a count followed by its items."""


def _entry(
    context: str,
    selection: Selection,
    outputs: Mapping[str, np.ndarray],
    nbytes: int,
    versions: Mapping[str, str],
) -> _Entry:
    return (
        context,
        nbytes,
        len(selection.models),
        *selection.models,
        len(selection.weights),
        *flatten(list(selection.weights.items())),
        len(outputs),
        *flatten(list(outputs.items())),
        *flatten(list(versions.items())),
    )


def _recall(entry: _Entry) -> Remembered:
    context, nbytes, n = entry[0], entry[1], entry[2]
    at = 3
    models, at = entry[at : at + n], at + n
    n, at = entry[at], at + 1
    weights, at = dict(groups(entry[at : at + 2 * n], 2)), at + 2 * n
    n, at = entry[at], at + 1
    outputs, at = dict(groups(entry[at : at + 2 * n], 2)), at + 2 * n
    versions = dict(groups(entry[at:], 2))
    return Remembered(context, Selection(models, weights), outputs, nbytes, versions)


@dataclass(frozen=True, slots=True)
class FeedbackStats:
    """One app's store, as ``/metrics`` shows it."""

    app: str
    entries: int
    bytes: int
    evictions: int


class FeedbackStore:
    def __init__(self, max_bytes: int, seed: int | None = None) -> None:
        self.max_bytes = max_bytes
        start = random.Random(seed).getrandbits(20) << 32
        self._ids = itertools.count(start + 1)
        self._apps: dict[str, UntrackedFifo] = {}
        """Per app: query id -> ``_Entry``, oldest first, bounded in bytes."""

    def __len__(self) -> int:
        return sum(len(app) for app in self._apps.values())

    def new_id(self) -> int:
        return next(self._ids)

    def remember(
        self,
        query_id: int,
        app: str,
        context: str,
        selection: Selection,
        outputs: Mapping[str, np.ndarray],
        versions: Mapping[str, str] | None = None,
    ) -> None:
        """Keep copies of the output rows (never views of a batch's buffer), and which
        version of each model answered."""
        copies = {model: np.array(output, copy=True) for model, output in outputs.items()}
        nbytes = ENTRY_OVERHEAD + sum(output_bytes(output) for output in copies.values())
        if nbytes > self.max_bytes:
            return  # bound 0 (feedback by id off), or one row larger than the bound
        queries = self._apps.get(app)
        if queries is None:
            queries = self._apps[app] = UntrackedFifo(self.max_bytes)
        queries.put(query_id, _entry(context, selection, copies, nbytes, versions or {}), nbytes)

    def get(self, app: str, query_id: int) -> Remembered:
        """The query's record; ``NotFound`` if unknown, used up, evicted or another app's."""
        queries = self._apps.get(app)
        entry = None if queries is None else queries.get(query_id)
        if entry is not None:
            return _recall(entry)
        if queries is not None and query_id <= queries.evicted_through:
            raise NotFound(
                f"query id {query_id} of app '{app}' was evicted: the frontend keeps the "
                f"newest {self.max_bytes} bytes of queries per app for feedback "
                "(--feedback-max-bytes); send labels sooner, or send feedback by input"
            )
        raise NotFound(
            f"unknown query id {query_id} for app '{app}': it was never answered here, "
            "its feedback was already received, or its answer was a default"
        )

    def forget(self, app: str, query_id: int) -> bool:
        """Use the id up: its feedback has been received. False if it was not there."""
        queries = self._apps.get(app)
        return queries is not None and queries.pop(query_id) is not None

    def stats(self) -> list[FeedbackStats]:
        return [FeedbackStats(app, len(q), q.bytes, q.evictions) for app, q in self._apps.items()]


def output_bytes(output: np.ndarray) -> int:
    """Bytes counted for a kept output row: its data, the ndarray, and for BYTES
    outputs the objects it points to (the Shadow store counts the same way)."""
    size = ARRAY_OVERHEAD + int(output.nbytes)
    if output.dtype.kind == "O":  # BYTES outputs: the objects the array points to
        size += sum(sys.getsizeof(value) for value in output.flat)
    return size
