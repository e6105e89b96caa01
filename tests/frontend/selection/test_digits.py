"""Convergence on real predictions: three scikit-learn digits classifiers.

The models (trained in the session fixture) are logistic regression on all 64
pixels (~96% accurate), on 3 pixels and 60 samples (~40%), and on shuffled
labels (~10%). Each round draws a test digit, the policy selects, the chosen
models' real class probabilities are combined, each model's zero-one loss
against the true label is fed back -- as the frontend does with a client's
feedback.
"""

from __future__ import annotations

import numpy as np
import pytest

from clipper.frontend.selection import POLICIES, Policy

ROUNDS = 1500
GOOD = "logreg-all-pixels"


def play(policy: Policy, digits, rounds: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Returns per round the models chosen (exp4: the heaviest) and whether it was right."""
    rng = np.random.default_rng(seed)
    chosen, correct = [], np.empty(rounds, dtype=bool)
    for t in range(rounds):
        i = int(rng.integers(len(digits.labels)))
        label = int(digits.labels[i])
        selection = policy.select("")
        outputs = {m: digits.probabilities[m][i] for m in selection.models}
        combined = policy.combine("", selection, outputs)
        correct[t] = int(np.argmax(combined.output)) == label
        losses = {m: policy.loss(outputs[m], label) for m in combined.answered}
        policy.update("", selection, losses)
        chosen.append(max(selection.weights, key=selection.weights.__getitem__))
    return chosen, correct


def test_the_models_are_of_clearly_different_quality(digits_models) -> None:
    acc = digits_models.accuracy
    assert acc["logreg-all-pixels"] > 0.9
    assert 0.25 < acc["logreg-3-pixels"] < 0.6
    assert acc["logreg-shuffled"] < 0.2


@pytest.mark.parametrize("name", ["exp3", "exp4", "epsilon_greedy", "thompson"])
@pytest.mark.parametrize("seed", [0, 1])
def test_converges_to_the_best_digits_model(name: str, seed: int, digits_models) -> None:
    policy = POLICIES[name](digits_models.names, seed=seed)
    chosen, correct = play(policy, digits_models, ROUNDS, seed=10 + seed)
    weights = policy.weights()
    assert max(weights, key=weights.__getitem__) == GOOD
    late = slice(ROUNDS // 2, None)
    share_good = np.mean([m == GOOD for m in chosen[late]])
    assert share_good > 0.8
    # Served accuracy once settled is close to the best model's own.
    assert np.mean(correct[late]) > digits_models.accuracy[GOOD] - 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_exp4_ensemble_puts_its_weight_on_the_best_model(seed: int, digits_models) -> None:
    policy = POLICIES["exp4"](digits_models.names, seed=seed)
    _, correct = play(policy, digits_models, ROUNDS, seed=20 + seed)
    weights = policy.weights()
    assert weights[GOOD] > 0.99
    assert np.mean(correct[ROUNDS // 2 :]) >= digits_models.accuracy[GOOD] - 0.05


def test_exp4_ranks_every_model_early_on(digits_models) -> None:
    """Before the losers hit the weight floor (see logweights), their order is right too."""
    policy = POLICIES["exp4"](digits_models.names)
    play(policy, digits_models, 150, seed=30)
    weights = policy.weights()
    assert weights[GOOD] > weights["logreg-3-pixels"] > weights["logreg-shuffled"]


def test_exp4_learns_from_stragglers_that_answered(digits_models) -> None:
    """Only the models that answered are scored; a missing model keeps its weight."""
    policy = POLICIES["exp4"](digits_models.names)
    i, label = 0, int(digits_models.labels[0])
    selection = policy.select("")
    answered = {m: digits_models.probabilities[m][i] for m in digits_models.names[:2]}
    combined = policy.combine("", selection, answered)
    assert combined.missing == ("logreg-shuffled",)
    losses = {m: policy.loss(answered[m], label) for m in combined.answered}
    before = policy.weights()
    policy.update("", selection, losses)
    after = policy.weights()
    # A missing model's weight changes only through renormalisation.
    ratio = after["logreg-shuffled"] / before["logreg-shuffled"]
    for m, loss in losses.items():
        expected = ratio * np.exp(-policy.params.eta * loss)  # type: ignore[attr-defined]
        assert after[m] / before[m] == pytest.approx(expected)
