"""A policy's state is its prior plus the sum of its updates' increments.

What a shared backend relies on: the ``Deltas`` every ``update`` returns, summed
per model and field, rebuild (``load``) the same state the updates built in
place, whatever order they came in; a model without totals starts fresh.
"""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.routing import SelectionConfig
from clipper.frontend.selection import make_policy

MODELS = ["a", "b", "c"]


def summed(deltas_list: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = {}
    for deltas in deltas_list:
        for model, fields in deltas.items():
            for field, amount in fields.items():
                mine = totals.setdefault(model, {})
                mine[field] = mine.get(field, 0.0) + amount
    return totals


@pytest.mark.parametrize("kind", ["exp3", "exp4", "epsilon_greedy", "thompson"])
def test_loading_the_summed_updates_rebuilds_the_learned_state(kind: str) -> None:
    learner = make_policy(SelectionConfig(type=kind), MODELS, seed=1)
    feedback = np.random.default_rng(2)
    deltas = []
    for _ in range(200):
        selection = learner.select("")
        losses = {m: float(feedback.random() * (m != "a")) for m in selection.models}
        deltas.append(learner.update("", selection, losses))
    deltas.reverse()  # addition does not care about order
    loaded = make_policy(SelectionConfig(type=kind), MODELS, seed=3)
    loaded.load("", summed(deltas))
    assert loaded.weights() == pytest.approx(learner.weights(), abs=1e-9)
    assert max(loaded.weights(), key=loaded.weights().__getitem__) == "a"


@pytest.mark.parametrize("kind", ["exp3", "epsilon_greedy", "thompson"])
def test_a_model_without_totals_starts_fresh(kind: str) -> None:
    policy = make_policy(SelectionConfig(type=kind), ["a", "b"], seed=1)
    fresh = dict(make_policy(SelectionConfig(type=kind), ["a", "b"], seed=1).weights())
    policy.load("", {})
    assert policy.weights() == pytest.approx(fresh)


def test_the_fixed_policy_shares_nothing() -> None:
    policy = make_policy(SelectionConfig(type="fixed"), MODELS)
    assert policy.update("", policy.select(""), {"a": 0.5}) == {}
