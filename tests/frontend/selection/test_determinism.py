"""Seeded policies replay exactly; reading weights never disturbs the sequence."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.frontend.selection import POLICIES, Policy

RANDOMISED = ["exp3", "epsilon_greedy", "thompson"]
MODELS = ["a", "b", "c", "d"]


def trace(policy: Policy, rounds: int = 300, read_weights: bool = False) -> list[object]:
    """Selections and weights over a fixed feedback stream (losses seeded separately)."""
    feedback = np.random.default_rng(99)
    out: list[object] = []
    for t in range(rounds):
        context = ("", "user-1", "user-2")[t % 3]
        selection = policy.select(context)
        out.append((selection.models, dict(selection.weights)))
        if read_weights:
            policy.weights(context)
            policy.weights("someone-new")
        policy.update(context, selection, {m: float(feedback.random()) for m in selection.models})
    out.append(policy.weights("user-1"))
    return out


@pytest.mark.parametrize("name", list(POLICIES))
def test_same_seed_same_decisions(name: str) -> None:
    params = {"bernoulli": True} if name == "thompson" else {}
    first = trace(POLICIES[name](MODELS, params, seed=7))
    second = trace(POLICIES[name](MODELS, params, seed=7), read_weights=True)
    assert first == second


@pytest.mark.parametrize("name", RANDOMISED)
def test_different_seeds_different_decisions(name: str) -> None:
    assert trace(POLICIES[name](MODELS, seed=1)) != trace(POLICIES[name](MODELS, seed=2))


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_model_is_selectable_and_weights_are_a_distribution(name: str) -> None:
    policy = POLICIES[name](MODELS, seed=0)
    seen = set()
    for _ in range(400):
        selection = policy.select("")
        seen.update(selection.models)
        for model, weight in selection.weights.items():
            assert model in selection.models
            assert 0.0 < weight <= 1.0
    weights = policy.weights()
    assert list(weights) == MODELS
    assert sum(weights.values()) == pytest.approx(1.0)
    assert seen == ({"a"} if name == "fixed" else set(MODELS))


@pytest.mark.parametrize("name", ["exp3", "epsilon_greedy"])
def test_reported_probabilities_match_the_draws(name: str) -> None:
    """The probability in a Selection is what the draw really had (Exp3 relies on it)."""
    policy = POLICIES[name](["a", "b", "c"], seed=3)
    for _ in range(200):  # skew the weights
        selection = policy.select("")
        policy.update("", selection, {selection.models[0]: float(selection.models[0] != "a")})
    expected = policy.weights()
    counts = dict.fromkeys(expected, 0)
    n = 4000
    for _ in range(n):
        selection = policy.select("")
        counts[selection.models[0]] += 1
        assert selection.weights[selection.models[0]] == pytest.approx(
            expected[selection.models[0]]
        )
    for model, p in expected.items():
        assert counts[model] / n == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / n) + 1e-3)


def test_thompson_reported_probabilities_match_the_draws() -> None:
    policy = POLICIES["thompson"](["a", "b", "c"], {"prior_alpha": 3, "prior_beta": 2}, seed=5)
    policy.update("", policy.select(""), {"a": 0.0, "b": 0.5, "c": 1.0})
    expected = policy.weights()
    n = 4000
    counts = dict.fromkeys(expected, 0)
    for _ in range(n):
        counts[policy.select("").models[0]] += 1
    for model, p in expected.items():
        # Monte-Carlo estimate (1024 draws) against 4000 real draws.
        assert counts[model] / n == pytest.approx(p, abs=0.05)
