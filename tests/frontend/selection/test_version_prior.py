"""Each policy's bounded prior for a new version (``Policy.prior`` / ``inherit``).

Pure and seeded: a predecessor's state is shrunk to at most K pseudo-observations,
keeping its mean (thompson, epsilon_greedy) or its side of a fair share (exp3,
exp4: within K x eta nats); a small record is kept whole; nothing to inherit is
a fresh start.
"""

from __future__ import annotations

import numpy as np
import pytest

from clipper.frontend.selection import Selection
from clipper.frontend.selection.epsilon_greedy import EpsilonGreedy
from clipper.frontend.selection.exp3 import Exp3
from clipper.frontend.selection.exp4 import Exp4
from clipper.frontend.selection.logweights import LOGW
from clipper.frontend.selection.thompson import Thompson


def teach(policy: Thompson | EpsilonGreedy, model: str, losses: list[float]) -> None:
    for loss in losses:
        policy.update("", Selection((model,), {model: 1.0}), {model: loss})


def test_thompson_keeps_the_mean_worth_at_most_k_observations() -> None:
    policy = Thompson(["m", "o"], seed=0)
    teach(policy, "m", [0.0] * 80 + [1.0] * 20)  # alpha 80, beta 20 beyond the prior
    assert policy.prior(policy.totals(""), "m", 10) == pytest.approx({"alpha": 8.0, "beta": 2.0})
    assert policy.prior(policy.totals(""), "m", 1000) == pytest.approx({"alpha": 80, "beta": 20})
    assert policy.prior({}, "m", 10) == {"alpha": 0.0, "beta": 0.0}  # fresh: the prior alone
    policy.inherit("m", 10)
    assert policy.totals("")["m"] == pytest.approx({"alpha": 8.0, "beta": 2.0})


def test_epsilon_greedy_keeps_the_mean_loss_over_at_most_k_counts() -> None:
    policy = EpsilonGreedy(["m", "o"], seed=0)
    teach(policy, "m", [0.2] * 50)
    prior = policy.prior(policy.totals(""), "m", 5)
    assert prior == pytest.approx({"count": 5.0, "sum": 1.0})


@pytest.mark.parametrize("make", [lambda: Exp3(["m", "o"], {"eta": 0.05}, seed=0),
                                  lambda: Exp4(["m", "o"], {"eta": 0.05}, seed=0)])  # fmt: skip
def test_log_weights_move_at_most_k_eta_from_a_fair_share(make: object) -> None:
    policy = make()  # type: ignore[operator]
    far = {"m": {LOGW: -20.0}, "o": {LOGW: 0.0}}
    assert policy.prior(far, "m", 10) == pytest.approx({LOGW: -0.5})  # fair: o's 0, -10 x .05
    near = {"m": {LOGW: 0.2}, "o": {LOGW: 0.0}}
    assert policy.prior(near, "m", 10) == pytest.approx({LOGW: 0.2})  # within the bound: kept
    assert policy.prior({"m": {LOGW: 1.0}}, "m", 10) == {}  # no other arm: fresh
    policy.load("", far)
    policy.inherit("m", 10)
    w = policy.weights("")
    raw = np.array([w["m"], w["o"]])
    assert raw[0] < raw[1]
    assert np.log(raw[1] / raw[0]) <= 0.5 + 1e-9  # exp3's exploration only narrows it
