"""Admission control: how many batches a model server takes in before it says no.

A model runs ``--max-concurrency`` batches at once on its worker threads; without a
bound, every further ModelInfer call would wait for a thread, holding its request
in memory, for as long as the client keeps sending -- the latency of every call
grows and the process can run out of memory before anything says so. So, as
Triton's queue policy and Ray Serve's ``max_queued_requests`` do, a call is
admitted only while fewer than ``max_queued_batches`` wait for a worker; past
that it fails at once, before its tensors are decoded, with ``Overloaded``
(RESOURCE_EXHAUSTED, naming both settings). The caller -- a frontend, which
fails that batch without marking the replica down, or any OIP client -- can back
off or go elsewhere, and the calls already admitted finish as fast as before.

Counting happens on the event loop (one integer, no lock): a call is *in* from
admission until its batch has been predicted; those beyond the worker count are
the queue, exported as ``clipper_model_queued_batches``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from clipper.common.errors import Overloaded
from clipper.model_wrappers.metrics import ModelMetrics


class Admission:
    """Batches in the server (running or waiting for a worker), bounded."""

    def __init__(self, model: str, workers: int, max_queued: int, metrics: ModelMetrics) -> None:
        self.model = model
        self.workers = workers
        self.max_queued = max_queued
        self.inside = 0
        self._metrics = metrics
        metrics.max_queued_batches.set(max_queued)

    @property
    def queued(self) -> int:
        """Batches admitted that no worker has taken yet (as far as counting can tell)."""
        return max(0, self.inside - self.workers)

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one place while the body runs; ``Overloaded`` if there is none."""
        if self.inside >= self.workers + self.max_queued:
            self._metrics.rejected.inc()
            raise Overloaded(
                f"model '{self.model}' is overloaded: {self.workers} batch(es) running and "
                f"{self.queued} waiting for a worker (--max-concurrency {self.workers}, "
                f"--max-queued-batches {self.max_queued}); retry later or add replicas"
            )
        self._moved(+1)
        try:
            yield
        finally:
            self._moved(-1)

    def _moved(self, step: int) -> None:
        self.inside += step
        self._metrics.queued_batches.set(self.queued)
