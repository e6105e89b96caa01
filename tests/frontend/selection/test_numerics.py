"""No overflow, underflow or NaN however long a policy runs.

Multiplicative weights change log-weights additively, by ``eta * loss`` per
update, so 5,000 updates at ``eta = 1000`` move them as far as 5e9 updates at
``eta = 0.001`` -- far beyond a million updates at any sensible rate -- in a
fraction of a second. The counting policies get the same treatment through
priors of 1e12 pseudo-observations.
"""

from __future__ import annotations

import numpy as np
import pytest

from clipper.frontend.selection import POLICIES, Policy
from clipper.frontend.selection.logweights import LOG_FLOOR, normalise

UPDATES = 5_000


def hammer(policy: Policy, rounds: int = UPDATES) -> None:
    """Model a is always right, every other model always wrong."""
    for _ in range(rounds):
        selection = policy.select("")
        policy.update("", selection, {m: float(m != "a") for m in selection.models})
    weights = np.array(list(policy.weights().values()))
    assert np.isfinite(weights).all()
    assert weights.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("name", "params"), [("exp3", {"eta": 1000.0}), ("exp4", {"eta": 1000.0})])
def test_multiplicative_weights_stay_finite_and_can_recover(name: str, params: dict) -> None:
    policy = POLICIES[name](["a", "b", "c"], params, seed=0)
    hammer(policy, 2_000)
    state = policy._states.get("").logp
    assert np.isfinite(state).all()
    assert state.min() >= state.max() - LOG_FLOOR - 1e-9
    # Now a is always wrong and b always right: b takes over in bounded time.
    for _ in range(200):
        selection = policy.select("")
        policy.update("", selection, {m: float(m != "b") for m in selection.models})
    weights = policy.weights()
    assert max(weights, key=weights.__getitem__) == "b"


@pytest.mark.parametrize("name", ["exp3", "exp4"])
def test_many_updates_at_a_huge_learning_rate(name: str) -> None:
    policy = POLICIES[name](["a", "b", "c"], {"eta": 1000.0}, seed=0)
    hammer(policy)
    assert policy.weights()["a"] > 0.9


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("thompson", {"prior_alpha": 1e12, "prior_beta": 1e12}),
        ("thompson", {"prior_alpha": 1e-12, "prior_beta": 1e-12}),
        ("epsilon_greedy", {}),
    ],
)
def test_counting_policies_at_extreme_counts(name: str, params: dict) -> None:
    policy = POLICIES[name](["a", "b"], params, seed=0)
    hammer(policy, 2_000)


def test_normalise_handles_extremes() -> None:
    logp = np.array([1e300, -1e300, 0.0])
    normalise(logp)
    assert np.isfinite(logp).all()
    assert np.exp(logp).sum() == pytest.approx(1.0)
    logp = np.array([-1e308, -1e308])
    normalise(logp)
    np.testing.assert_allclose(np.exp(logp), [0.5, 0.5])
