"""Each replica's batch limit, sized by AIMD against a latency budget.

Clipper's adaptive batching: the largest batch a replica can finish within the
budget is found the way TCP finds a link's capacity. After a batch that met the
budget, the limit grows by a constant (additive increase); after one that overran
it, the limit shrinks by a factor (multiplicative decrease). The limit tracks the
replica's speed, so a replica that slows down (a noisy neighbour, a bigger model
version) gets smaller batches within a few batches, and a fast one gets larger.

Two details keep AIMD from hurting:

* The limit only grows after a *full* batch (as many rows as the limit). A batch
  that took whatever was queued says nothing about whether a larger one would
  fit, so at low load the limit stays where the evidence put it instead of
  drifting up to the maximum and overshooting the moment load arrives (TCP's
  congestion-window validation).
* The batcher never waits for a batch to fill (unless the model asks for
  delayed batching): it takes ``min(limit, queued)``. So at low load every
  query leaves at once, and batching can only merge queries that would
  otherwise have waited for one another. For a model whose cost is linear in
  rows that is never slower than one row at a time.

The controller is pure: no clock, no I/O, just numbers in and a limit out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AIMDParams:
    budget_s: float
    """Latency one batch may take."""
    max_batch_size: int
    initial: int = 1
    increase: int = 1
    decrease: float = 0.9
    adaptive: bool = True
    """False: always ``max_batch_size`` (fixed batching; 1 means no batching)."""


class AIMD:
    """The batch limit of one replica."""

    __slots__ = ("_limit", "params")

    def __init__(self, params: AIMDParams) -> None:
        self.params = params
        self._limit = float(params.initial if params.adaptive else params.max_batch_size)
        self._limit = min(self._limit, float(params.max_batch_size))

    @property
    def limit(self) -> int:
        """Rows the next batch may hold (at least 1)."""
        return max(1, int(self._limit))

    def record(self, rows: int, latency_s: float) -> None:
        """Learn from a batch of ``rows`` that took ``latency_s`` (a failure: ``inf``)."""
        if not self.params.adaptive:
            return
        if latency_s > self.params.budget_s:
            self._limit = max(1.0, self._limit * self.params.decrease)
        elif rows >= self.limit:
            self._limit = min(float(self.params.max_batch_size), self._limit + self.params.increase)

    def reconfigure(self, params: AIMDParams) -> None:
        """New budget or maximum (the routing table changed); the limit carries over."""
        self.params = params
        if not params.adaptive:
            self._limit = float(params.max_batch_size)
        self._limit = min(self._limit, float(params.max_batch_size))
