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

import numpy as np
from pydantic import Field

from clipper.frontend.selection import logweights
from clipper.frontend.selection.params import PolicyParams
from clipper.frontend.selection.policy import Selection, _ContextualPolicy


class Exp3Params(PolicyParams):
    gamma: float = Field(default=0.1, gt=0, le=1)
    """Exploration: the share of queries spread uniformly over all models."""
    eta: float | None = Field(default=None, gt=0)
    """Learning rate; default ``gamma / K`` for K models (Auer et al.'s choice)."""


class Exp3(_ContextualPolicy[np.ndarray]):
    """State per context: normalised log-weights, one per model."""

    name = "exp3"
    Params = Exp3Params
    params: Exp3Params

    def _new_state(self, n_models: int) -> np.ndarray:
        return logweights.uniform(n_models)

    def _distribution(self, state: np.ndarray) -> np.ndarray:
        gamma = self.params.gamma
        return (1.0 - gamma) * logweights.probabilities(state) + gamma / state.size

    def _select(self, state: np.ndarray) -> Selection:
        p = self._distribution(state)
        i = logweights.draw(self._rng, p)
        return self._pick(i, float(p[i]))

    def _update(self, state: np.ndarray, selection: Selection, losses: dict[int, float]) -> None:
        eta = self.params.eta or self.params.gamma / state.size
        for model in selection.models:
            i = self._index.get(model)
            if i is None or i not in losses:
                continue
            p = selection.weights.get(model) or self._distribution(state)[i]
            state[i] -= eta * losses[i] / p
        logweights.normalise(state)

    def _resize(self, state: np.ndarray, sources: list[int | None]) -> np.ndarray:
        return logweights.resize(state, sources)
