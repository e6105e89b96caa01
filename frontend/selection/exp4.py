"""Exp4 as Clipper uses it: an ensemble of all models with learned weights.

Every query asks every model and combines their outputs with the current
weights (see ``combine``). With the label, every model that answered has its
own loss -- full information, so no importance weighting is needed -- and each
weight is multiplied by ``exp(-eta * loss)`` (the Hedge / multiplicative-weights
update, Freund and Schapire 1997, which Clipper's Exp4 ensemble applies per
model). Models that missed the deadline have no loss and keep their weight:
being slow is handled by straggler mitigation, not by forgetting the model.
Regret against the best single model: O(sqrt(T log K)).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field

from clipper.frontend.selection import logweights
from clipper.frontend.selection.combine import combine_outputs
from clipper.frontend.selection.logweights import LOGW, LogWeights
from clipper.frontend.selection.params import PolicyParams
from clipper.frontend.selection.policy import Combined, ContextualPolicy, Selection, Totals


class Exp4Params(PolicyParams):
    eta: float = Field(default=0.1, gt=0)
    """Learning rate: each loss of 1 divides a model's weight by ``e**eta``."""
    output: Literal["auto", "label", "scores", "regression"] = "auto"
    """How outputs combine. ``label``: weighted vote; ``scores`` (class probabilities)
    and ``regression``: weighted mean. ``auto``: integer, boolean and text outputs are
    labels, float rows of several values are scores, single floats regression."""
    agreement_rtol: float = Field(default=0.1, ge=0)
    """Regression confidence: a model agrees when its value is within
    ``agreement_atol + agreement_rtol * |combined|`` of the combined one."""
    agreement_atol: float = Field(default=0.0, ge=0)
    """Regression confidence: the absolute part of that tolerance."""


class Exp4(ContextualPolicy[LogWeights]):
    """State per context: normalised log-weights, one per model."""

    name = "exp4"
    Params = Exp4Params
    params: Exp4Params

    def _new_state(self, n_models: int) -> LogWeights:
        return LogWeights.uniform(n_models)

    def _distribution(self, state: LogWeights) -> np.ndarray:
        return state.distribution()[0]

    def _select(self, state: LogWeights) -> Selection:
        p = self._distribution(state)
        return Selection(self._models, dict(zip(self._models, p.tolist(), strict=True)))

    def combine(
        self, context: str, selection: Selection, outputs: Mapping[str, np.ndarray]
    ) -> Combined:
        return combine_outputs(
            selection,
            outputs,
            kind=self.params.output,
            rtol=self.params.agreement_rtol,
            atol=self.params.agreement_atol,
        )

    def _deltas(
        self, state: LogWeights, selection: Selection, losses: dict[int, float]
    ) -> dict[int, dict[str, float]]:
        return {i: {LOGW: -self.params.eta * loss} for i, loss in losses.items()}

    def _apply(self, state: LogWeights, deltas: dict[int, dict[str, float]]) -> None:
        state.learn({i: -fields[LOGW] for i, fields in deltas.items()})

    def _totals(self, state: LogWeights) -> list[dict[str, float]]:
        return [{LOGW: float(value)} for value in state.logp]

    def prior(self, totals: Totals, predecessor: str, observations: float) -> dict[str, float]:
        """Within ``observations`` x eta of a fair share (``logweights.bounded_prior``)."""
        eta = self.params.eta
        return logweights.bounded_prior(totals, predecessor, observations * eta)

    def _from_totals(self, totals: list[Mapping[str, float] | None]) -> LogWeights:
        return LogWeights.from_totals(totals)

    def _select_among(self, state: LogWeights, allowed: list[int]) -> Selection:
        """The ensemble of the allowed models, their weights renormalised."""
        p = self._distribution(state)[allowed]
        p = p / p.sum()
        models = tuple(self._models[i] for i in allowed)
        return Selection(models, dict(zip(models, p.tolist(), strict=True)))

    def _resize(self, state: LogWeights, sources: list[int | None]) -> LogWeights:
        return state.resize(sources)
