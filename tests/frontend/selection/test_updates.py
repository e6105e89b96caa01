"""Each algorithm's update rule, exactly as documented."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.frontend.selection import POLICIES, Selection


def test_exp3_divides_the_loss_by_the_probability_the_draw_had() -> None:
    policy = POLICIES["exp3"](["a", "b", "c"], {"gamma": 0.3, "eta": 0.2})
    # The selection carries the probability used at draw time (here: made up, 0.25),
    # which must be used even though the current one is 1/3.
    selection = Selection(("b",), {"b": 0.25})
    policy.update("", selection, {"b": 0.5})
    logw = policy._states.get("").logp
    assert logw[0] - logw[1] == pytest.approx(0.2 * 0.5 / 0.25)
    assert logw[0] == logw[2]
    weights = policy.weights()
    w = np.exp(logw) / np.exp(logw).sum()
    assert weights["b"] == pytest.approx(0.7 * w[1] + 0.3 / 3)


def test_exp3_default_learning_rate_is_gamma_over_k() -> None:
    policy = POLICIES["exp3"](["a", "b", "c", "d"], {"gamma": 0.2})
    policy.update("", Selection(("a",), {"a": 0.5}), {"a": 1.0})
    logw = policy._states.get("").logp
    assert logw[1] - logw[0] == pytest.approx(0.2 / 4 * 1.0 / 0.5)


def test_exp3_learns_only_from_the_model_it_chose() -> None:
    policy = POLICIES["exp3"](["a", "b"])
    policy.update("", Selection(("a",), {"a": 0.5}), {"a": 0.0, "b": 1.0})
    assert policy.weights() == {"a": 0.5, "b": 0.5}


def test_exp4_multiplies_each_weight_by_exp_minus_eta_loss() -> None:
    policy = POLICIES["exp4"](["a", "b", "c"], {"eta": 0.7})
    policy.update("", policy.select(""), {"a": 0.0, "b": 0.5, "c": 1.0})
    w = np.exp(-0.7 * np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(list(policy.weights().values()), w / w.sum())


def test_epsilon_greedy_exploits_the_lowest_mean_loss() -> None:
    policy = POLICIES["epsilon_greedy"](["a", "b", "c"], {"epsilon": 0.0}, seed=0)
    for model, losses in {"a": [0.5, 0.5], "b": [0.0, 0.6], "c": [0.4]}.items():
        for loss in losses:
            policy.update("", Selection((model,), {model: 1.0}), {model: loss})
    assert {policy.select("").models[0] for _ in range(20)} == {"b"}  # means .5, .3, .4
    assert policy.weights() == {"a": 0.0, "b": 1.0, "c": 0.0}


def test_epsilon_greedy_explores_uniformly_with_probability_epsilon() -> None:
    policy = POLICIES["epsilon_greedy"](["a", "b", "c", "d"], {"epsilon": 0.4}, seed=0)
    policy.update("", Selection(("a",), {"a": 1.0}), {"a": 0.0, "b": 1.0, "c": 1.0, "d": 1.0})
    assert policy.weights() == pytest.approx({"a": 0.7, "b": 0.1, "c": 0.1, "d": 0.1})
    n = 5000
    share = np.mean([policy.select("").models[0] == "a" for _ in range(n)])
    assert share == pytest.approx(0.7, abs=4 * np.sqrt(0.21 / n))


def test_thompson_updates_fractionally_by_default() -> None:
    policy = POLICIES["thompson"](["a", "b"], {"prior_alpha": 2, "prior_beta": 3})
    policy.update("", Selection(("a",), {"a": 0.5}), {"a": 0.25})
    state = policy._states.get("")
    assert state.alpha.tolist() == [2.75, 2.0]
    assert state.beta.tolist() == [3.25, 3.0]


def test_thompson_bernoulli_updates_are_whole_outcomes_with_the_right_odds() -> None:
    policy = POLICIES["thompson"](["a"], {"bernoulli": True}, seed=0)
    n = 4000
    for _ in range(n):
        policy.update("", Selection(("a",), {"a": 1.0}), {"a": 0.3})
    state = policy._states.get("")
    assert state.alpha[0] + state.beta[0] == n + 2
    assert float(state.alpha[0]).is_integer()
    assert (state.alpha[0] - 1) / n == pytest.approx(0.7, abs=4 * np.sqrt(0.21 / n))
