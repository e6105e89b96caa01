"""Thompson sampling: draw each model's quality from its posterior, pick the best.

Each model's reward ``1 - loss`` is modelled as Bernoulli with a Beta
posterior, starting from ``Beta(prior_alpha, prior_beta)``. A query samples one
value per model and goes to the highest (Thompson 1933; Agrawal and Goyal 2012).
Losses in [0, 1] update the posterior fractionally by default (``alpha += 1 -
loss``, ``beta += loss``; exact for 0/1 losses, a standard extension otherwise);
with ``bernoulli: true`` each loss is first turned into a 0/1 outcome drawn with
probability ``1 - loss`` (Agrawal and Goyal's reduction, which keeps their
regret bound for any loss in [0, 1]).

Thompson sampling has no closed form for the probability of choosing a model,
so ``weights`` estimates it from ``MC_SAMPLES`` posterior draws made with their
own fixed-seed generator: reading it never changes the policy's own random
sequence. Those draws cost about 0.2 ms, too much for every query, so the
probability reported in a ``Selection`` (informational only: Thompson's update
does not use it) comes from an estimate refreshed after 1, 2, 4, ... updates,
then every ``MC_REFRESH``; ``weights`` is always fresh.

New models start from the prior: a model nobody has seen is tried as often as
the posterior says it might be the best, which is rarely when another model is
known to be excellent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from clipper.frontend.selection.params import PolicyParams
from clipper.frontend.selection.policy import ContextualPolicy, Selection, Totals, shrunk

MC_SAMPLES = 1024
MC_REFRESH = 256


class ThompsonParams(PolicyParams):
    prior_alpha: float = Field(default=1.0, gt=0)
    """Beta prior's alpha: pseudo-count of rewards before any feedback."""
    prior_beta: float = Field(default=1.0, gt=0)
    """Beta prior's beta: pseudo-count of losses before any feedback."""
    bernoulli: bool = False
    """Turn each loss into a 0/1 outcome before updating (see the module docstring)."""


@dataclass(slots=True)
class BetaPosteriors:
    alpha: np.ndarray
    beta: np.ndarray
    chosen: np.ndarray | None = None
    """Cached estimate of each model's probability of being chosen."""
    stale: int = 0
    """Updates since ``chosen`` was estimated."""
    updates: int = 0


class Thompson(ContextualPolicy[BetaPosteriors]):
    name = "thompson"
    Params = ThompsonParams
    params: ThompsonParams

    def _new_state(self, n_models: int) -> BetaPosteriors:
        prior = BetaPosteriors(
            np.full(n_models, self.params.prior_alpha), np.full(n_models, self.params.prior_beta)
        )
        prior.chosen = np.full(n_models, 1.0 / n_models) if n_models else None  # by symmetry
        return prior

    def _distribution(self, state: BetaPosteriors) -> np.ndarray:
        if state.chosen is not None and state.stale == 0:
            return state.chosen
        return self._monte_carlo(state)  # not cached: reads must not change selections

    def _cached(self, state: BetaPosteriors) -> np.ndarray:
        # Refresh after 1, 2, 4, ... updates while the posterior moves fast, then
        # every MC_REFRESH: O(log T) estimates early on, amortised ~1 us per update later.
        if state.chosen is None or state.stale >= min(MC_REFRESH, max(1, state.updates // 2)):
            state.chosen, state.stale = self._monte_carlo(state), 0
        return state.chosen

    @staticmethod
    def _monte_carlo(state: BetaPosteriors) -> np.ndarray:
        n = state.alpha.size
        draws = np.random.default_rng(0).beta(state.alpha, state.beta, size=(MC_SAMPLES, n))
        return np.bincount(draws.argmax(axis=1), minlength=n) / MC_SAMPLES

    def _select(self, state: BetaPosteriors) -> Selection:
        i = int(self._rng.beta(state.alpha, state.beta).argmax())
        return self._pick(i, float(self._cached(state)[i]))

    def _deltas(
        self, state: BetaPosteriors, selection: Selection, losses: dict[int, float]
    ) -> dict[int, dict[str, float]]:
        deltas = {}
        for i, loss in losses.items():
            reward = 1.0 - loss
            if self.params.bernoulli:
                reward = float(self._rng.random() < reward)
            deltas[i] = {"alpha": reward, "beta": 1.0 - reward}
        return deltas

    def _apply(self, state: BetaPosteriors, deltas: dict[int, dict[str, float]]) -> None:
        for i, fields in deltas.items():
            state.alpha[i] += fields["alpha"]
            state.beta[i] += fields["beta"]
        state.stale += 1
        state.updates += 1

    def _from_totals(self, totals: list[Mapping[str, float] | None]) -> BetaPosteriors:
        state = self._new_state(len(totals))
        for i, fields in enumerate(totals):
            if fields:
                state.alpha[i] += fields.get("alpha", 0.0)
                state.beta[i] += fields.get("beta", 0.0)
                state.updates += round(fields.get("alpha", 0.0) + fields.get("beta", 0.0))
        if any(totals):
            state.chosen = None  # no longer symmetric: estimated again on the next draw
        return state

    def _totals(self, state: BetaPosteriors) -> list[dict[str, float]]:
        alpha, beta = state.alpha - self.params.prior_alpha, state.beta - self.params.prior_beta
        return [{"alpha": float(a), "beta": float(b)} for a, b in zip(alpha, beta, strict=True)]

    def prior(self, totals: Totals, predecessor: str, observations: float) -> dict[str, float]:
        """The predecessor's posterior counts, scaled to at most ``observations`` (alpha +
        beta beyond the prior): the same mean, a wider posterior."""
        fields = totals.get(predecessor) or {}
        counts = {f: float(fields.get(f, 0.0)) for f in ("alpha", "beta")}
        scaled = shrunk({"n": counts["alpha"] + counts["beta"], **counts}, "n", observations)
        return {"alpha": scaled["alpha"], "beta": scaled["beta"]}

    def _select_among(self, state: BetaPosteriors, allowed: list[int]) -> Selection:
        """Thompson's own rule over the allowed models: the best of their draws."""
        draws = self._rng.beta(state.alpha[allowed], state.beta[allowed])
        i = allowed[int(draws.argmax())]
        return self._pick(i, float(self._cached(state)[i]))

    def _resize(self, state: BetaPosteriors, sources: list[int | None]) -> BetaPosteriors:
        out = self._new_state(len(sources))
        for i, s in enumerate(sources):
            if s is not None:
                out.alpha[i], out.beta[i] = state.alpha[s], state.beta[s]
        out.chosen = None  # no longer symmetric
        return out
