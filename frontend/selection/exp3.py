"""Exp3: one model per query, learning from that model's loss alone.

Exp3 (Auer, Cesa-Bianchi, Freund and Schapire, "The Nonstochastic Multiarmed
Bandit Problem", 2002) as Clipper uses it to pick one model per query. Only the
chosen model's prediction is scored, so its loss is divided by the probability
``p`` with which it was drawn (an unbiased estimate of every model's loss, zero
for the models not drawn) and its weight is multiplied by ``exp(-eta * loss/p)``.
Draws mix the weights with uniform exploration, ``p = (1-gamma) w + gamma/K``,
which keeps every model sampled and bounds ``loss/p`` by ``K/gamma``. The ``p``
used is the one in the query's ``Selection``, i.e. the probability the draw
really had, even if other feedback moved the weights in the meantime.

Adversarial guarantee (with gamma tuned to the horizon): regret O(sqrt(T K log K))
against the best model, with no assumption that models' quality is stationary.
The price is the exploration itself: ``gamma`` of traffic always goes to a
uniformly drawn model, so at the default gamma = 0.1 Exp3 keeps paying about
0.1 x the mean gap to the best model per query.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from clipper.frontend.selection import logweights
from clipper.frontend.selection.logweights import LOGW, LogWeights
from clipper.frontend.selection.params import PolicyParams
from clipper.frontend.selection.policy import ContextualPolicy, Selection, Totals


class Exp3Params(PolicyParams):
    gamma: float = Field(default=0.1, gt=0, le=1)
    """Exploration: the share of queries spread uniformly over all models."""
    eta: float | None = Field(default=None, gt=0)
    """Learning rate; default ``gamma / K`` for K models (Auer et al.'s choice)."""


class Exp3(ContextualPolicy[LogWeights]):
    """State per context: normalised log-weights, one per model."""

    name = "exp3"
    Params = Exp3Params
    params: Exp3Params

    def _new_state(self, n_models: int) -> LogWeights:
        return LogWeights.uniform(n_models)

    def _distribution(self, state: LogWeights) -> np.ndarray:
        return state.distribution(self.params.gamma)[0]

    def _select(self, state: LogWeights) -> Selection:
        p, cdf = state.distribution(self.params.gamma)
        i = logweights.draw(self._rng, cdf)
        return self._pick(i, float(p[i]))

    def _deltas(
        self, state: LogWeights, selection: Selection, losses: dict[int, float]
    ) -> dict[int, dict[str, float]]:
        eta = self.params.eta or self.params.gamma / state.logp.size
        deltas = {}
        for model in selection.models:
            i = self._index.get(model)
            if i is not None and i in losses:
                p = selection.weights.get(model) or self._distribution(state)[i]
                deltas[i] = {LOGW: -eta * losses[i] / p}
        return deltas

    def _apply(self, state: LogWeights, deltas: dict[int, dict[str, float]]) -> None:
        state.learn({i: -fields[LOGW] for i, fields in deltas.items()})

    def _totals(self, state: LogWeights) -> list[dict[str, float]]:
        return [{LOGW: float(value)} for value in state.logp]

    def prior(self, totals: Totals, predecessor: str, observations: float) -> dict[str, float]:
        """Within ``observations`` x eta of a fair share (``logweights.bounded_prior``)."""
        eta = self.params.eta or self.params.gamma / max(1, len(self.models))
        return logweights.bounded_prior(totals, predecessor, observations * eta)

    def _from_totals(self, totals: list[Mapping[str, float] | None]) -> LogWeights:
        return LogWeights.from_totals(totals)

    def _resize(self, state: LogWeights, sources: list[int | None]) -> LogWeights:
        return state.resize(sources)
