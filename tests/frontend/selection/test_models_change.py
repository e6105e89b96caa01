"""set_models: new models get a fair share, removed ones vanish, the rest keep state."""

from __future__ import annotations

import pytest

from clipper.common.errors import Unavailable
from clipper.frontend.selection import POLICIES, Policy


def train(policy: Policy, best: str, rounds: int = 300, context: str = "") -> None:
    for _ in range(rounds):
        selection = policy.select(context)
        policy.update(context, selection, {m: float(m != best) for m in selection.models})


def unmixed(policy: Policy, context: str = "") -> dict[str, float]:
    """Exp3's learned weights without its uniform exploration mixed in."""
    weights = policy.weights(context)
    gamma = getattr(policy.params, "gamma", 0.0)
    return {m: (p - gamma / len(weights)) / (1 - gamma) for m, p in weights.items()}


@pytest.mark.parametrize("name", ["exp3", "exp4"])
def test_a_new_model_gets_a_fair_share_and_the_others_keep_their_ratios(name: str) -> None:
    policy = POLICIES[name](["a", "b", "c"], seed=0)
    train(policy, "b", 100)
    train(policy, "c", 50, context="user-1")
    before = {ctx: unmixed(policy, ctx) for ctx in ("", "user-1")}
    policy.set_models(["a", "b", "c", "d"])
    for ctx, old in before.items():
        assert policy.weights(ctx)["d"] == pytest.approx(0.25)
        after = unmixed(policy, ctx)
        assert after["a"] / after["b"] == pytest.approx(old["a"] / old["b"])
        assert after["c"] / after["b"] == pytest.approx(old["c"] / old["b"])
        assert sum(after.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["exp3", "exp4"])
def test_a_removed_model_vanishes_and_the_others_keep_their_ratios(name: str) -> None:
    policy = POLICIES[name](["a", "b", "c"], seed=0)
    train(policy, "b", 30)
    old = unmixed(policy)
    policy.set_models(["c", "b"])  # a removed, order changed
    after = unmixed(policy)
    assert list(after) == ["c", "b"]
    assert after["c"] / after["b"] == pytest.approx(old["c"] / old["b"])
    assert {m for _ in range(200) for m in policy.select("").models} <= {"b", "c"}


def test_epsilon_greedy_tries_a_new_model_first_and_keeps_what_it_learned() -> None:
    policy = POLICIES["epsilon_greedy"](["a", "b"], {"epsilon": 0.0}, seed=0)
    train(policy, "a", 20)
    policy.set_models(["a", "b", "new"])
    assert policy.select("").models == ("new",)  # no feedback yet counts as best
    policy.update("", policy.select(""), {"new": 1.0})
    assert policy.select("").models == ("a",)  # a's record survived


def test_thompson_keeps_posteriors_and_starts_new_models_at_the_prior() -> None:
    policy = POLICIES["thompson"](["a", "b"], seed=0)
    train(policy, "a", 200)
    policy.set_models(["a", "b", "new"])
    weights = policy.weights()
    assert weights["a"] > weights["b"]
    # From the prior, "new" might beat "a" (posterior mean ~0.995) only rarely -- but it
    # is tried, and would take over if it were better.
    assert 0.0 < weights["new"] < 0.05
    assert "new" in {policy.select("").models[0] for _ in range(3000)}


def test_fixed_falls_back_while_its_model_is_gone() -> None:
    policy = POLICIES["fixed"](["a", "b"], {"model": "b"})
    assert policy.select("").models == ("b",)
    policy.set_models(["a", "c"])
    assert policy.select("").models == ("a",)
    assert policy.weights() == {"a": 1.0, "c": 0.0}
    policy.set_models(["a", "b"])
    assert policy.select("").models == ("b",)


@pytest.mark.parametrize("name", list(POLICIES))
def test_no_models_is_unavailable_until_some_arrive(name: str) -> None:
    policy = POLICIES[name]([], seed=0)
    with pytest.raises(Unavailable, match="no models"):
        policy.select("")
    assert policy.weights() == {}
    policy.set_models(["x"])
    assert policy.select("").models == ("x",)
    assert policy.weights() == {"x": 1.0}


@pytest.mark.parametrize("name", list(POLICIES))
def test_feedback_for_a_removed_model_is_ignored(name: str) -> None:
    policy = POLICIES[name](["a", "b"], seed=0)
    selection = policy.select("")
    policy.set_models(["b"])
    policy.update("", selection, dict.fromkeys(selection.models, 1.0))
    assert policy.weights() == {"b": 1.0}


def test_models_must_be_distinct_names() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        POLICIES["exp3"](["a", "a"])
    with pytest.raises(TypeError, match="not one string"):
        POLICIES["exp3"]("abc")
