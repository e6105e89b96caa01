"""Epsilon-greedy: usually the model with the lowest mean loss so far.

With probability ``epsilon`` a query goes to a model drawn uniformly (explore);
otherwise to the model with the lowest mean observed loss (exploit), ties
broken at random. A model without feedback yet counts as best, so every model
is tried before the policy settles. Simple and predictable -- exactly
``epsilon`` of traffic explores -- but it assumes models' quality is stationary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from clipper.frontend.selection.params import PolicyParams
from clipper.frontend.selection.policy import ContextualPolicy, Selection, Totals, shrunk


class EpsilonGreedyParams(PolicyParams):
    epsilon: float = Field(default=0.1, ge=0, le=1)
    """The share of queries sent to a uniformly drawn model."""


@dataclass(slots=True)
class LossTotals:
    """Per model: how many losses were observed and their sum."""

    counts: np.ndarray
    sums: np.ndarray
    best: list[int] | None = None
    """Cached until the next update: indices of the models with the lowest mean."""


class EpsilonGreedy(ContextualPolicy[LossTotals]):
    name = "epsilon_greedy"
    Params = EpsilonGreedyParams
    params: EpsilonGreedyParams

    def _new_state(self, n_models: int) -> LossTotals:
        return LossTotals(np.zeros(n_models), np.zeros(n_models))

    def _best(self, state: LossTotals) -> list[int]:
        """Indices of the models with the lowest mean loss (untried ones first)."""
        if state.best is None:
            means = np.divide(
                state.sums, state.counts, out=np.full(state.sums.size, -1.0), where=state.counts > 0
            )
            state.best = np.flatnonzero(means == means.min()).tolist()
        return state.best

    def _distribution(self, state: LossTotals) -> np.ndarray:
        eps, n = self.params.epsilon, state.counts.size
        p = np.full(n, eps / n)
        best = self._best(state)
        p[best] += (1.0 - eps) / len(best)
        return p

    def _select(self, state: LossTotals) -> Selection:
        eps, n = self.params.epsilon, state.counts.size
        best = self._best(state)
        i = self._uniform(n) if self._rng.random() < eps else best[self._uniform(len(best))]
        greedy = (1.0 - eps) / len(best) if i in best else 0.0
        return self._pick(i, eps / n + greedy)

    def _uniform(self, n: int) -> int:
        """A uniform index below ``n``: ``rng.integers`` and ``rng.choice`` cost ~10x more."""
        return min(int(self._rng.random() * n), n - 1)

    def _deltas(
        self, state: LossTotals, selection: Selection, losses: dict[int, float]
    ) -> dict[int, dict[str, float]]:
        return {i: {"count": 1.0, "sum": loss} for i, loss in losses.items()}

    def _apply(self, state: LossTotals, deltas: dict[int, dict[str, float]]) -> None:
        for i, fields in deltas.items():
            state.counts[i] += fields["count"]
            state.sums[i] += fields["sum"]
        state.best = None

    def _from_totals(self, totals: list[Mapping[str, float] | None]) -> LossTotals:
        state = self._new_state(len(totals))
        for i, fields in enumerate(totals):
            if fields:
                state.counts[i] = fields.get("count", 0.0)
                state.sums[i] = fields.get("sum", 0.0)
        return state

    def _totals(self, state: LossTotals) -> list[dict[str, float]]:
        return [
            {"count": float(c), "sum": float(t)}
            for c, t in zip(state.counts, state.sums, strict=True)
        ]

    def prior(self, totals: Totals, predecessor: str, observations: float) -> dict[str, float]:
        """The predecessor's mean loss, counted as at most ``observations`` losses."""
        fields = totals.get(predecessor) or {}
        counts = {f: float(fields.get(f, 0.0)) for f in ("count", "sum")}
        return shrunk(counts, "count", observations)

    def _resize(self, state: LossTotals, sources: list[int | None]) -> LossTotals:
        out = self._new_state(len(sources))
        for i, s in enumerate(sources):
            if s is not None:
                out.counts[i], out.sums[i] = state.counts[s], state.sums[s]
        return out
