"""Convergence on a simulated environment: three models with Bernoulli losses.

Mean losses 0.2, 0.5 and 0.8 ("clearly different quality"). Pseudo-regret
(expected loss of what was served minus the best model's) is compared with
uniform random selection, whose regret over T rounds is 0.3 T. The margins are
generous (about twice the worst seen over many seeds) and each assertion holds
for several fixed seeds, so the test is statistical but not flaky.
"""

from __future__ import annotations

import pytest

from clipper.frontend.selection import POLICIES

MEANS = (0.2, 0.5, 0.8)
ROUNDS = 2000
UNIFORM_REGRET = ROUNDS * (sum(MEANS) / 3 - min(MEANS))
SEEDS = (0, 1, 2)
LEARNING = ["exp3", "exp4", "epsilon_greedy", "thompson"]


@pytest.mark.parametrize("name", LEARNING)
@pytest.mark.parametrize("seed", SEEDS)
def test_converges_to_the_best_model(name: str, seed: int, simulate) -> None:
    policy = POLICIES[name](["good", "fair", "bad"], seed=seed)
    run = simulate(policy, MEANS, ROUNDS, seed=100 + seed)
    assert run.regret() < 0.25 * UNIFORM_REGRET
    weights = policy.weights()
    assert max(weights, key=weights.__getitem__) == "good"
    assert weights["good"] > 0.85


@pytest.mark.parametrize("name", ["exp3", "exp4", "thompson"])
@pytest.mark.parametrize("seed", SEEDS)
def test_regret_grows_sublinearly(name: str, seed: int, simulate) -> None:
    policy = POLICIES[name](["good", "fair", "bad"], seed=seed)
    run = simulate(policy, MEANS, ROUNDS, seed=200 + seed)
    half = ROUNDS // 2
    assert run.regret(half) < 0.75 * run.regret(0, half)


@pytest.mark.parametrize("seed", SEEDS)
def test_epsilon_greedy_pays_only_for_exploration_once_settled(seed: int, simulate) -> None:
    epsilon = 0.1
    policy = POLICIES["epsilon_greedy"](["good", "fair", "bad"], {"epsilon": epsilon}, seed=seed)
    run = simulate(policy, MEANS, ROUNDS, seed=300 + seed)
    exploration_cost = epsilon * (sum(MEANS) / 3 - min(MEANS)) * (ROUNDS // 2)
    assert run.regret(ROUNDS // 2) < 2 * exploration_cost


@pytest.mark.parametrize(("name", "rounds"), [("exp3", 3000), ("exp4", 1500)])
@pytest.mark.parametrize("seed", SEEDS)
def test_adversarial_policies_follow_a_change_of_quality(
    name: str, rounds: int, seed: int, simulate
) -> None:
    """The best model becomes the worst after 500 rounds; the policy must follow.

    Exp3 sees only the chosen model's loss, so the new best model, drawn with
    probability gamma/K, needs up to ~1800 rounds to take over (seen over many
    seeds); exp4 sees every model's loss and follows within a few hundred.
    """
    policy = POLICIES[name](["a", "b", "c"], seed=seed)

    def means(t: int) -> tuple[float, ...]:
        return MEANS if t < 500 else MEANS[::-1]

    run = simulate(policy, means, rounds, seed=400 + seed)
    weights = policy.weights()
    assert max(weights, key=weights.__getitem__) == "c"
    assert run.regret(rounds - 500) < 0.25 * 500 * 0.3


def test_fixed_never_learns(simulate) -> None:
    policy = POLICIES["fixed"](["bad", "good"], {"model": "bad"})
    run = simulate(policy, (0.9, 0.1), 500)
    assert run.regret() == pytest.approx(500 * 0.8)
    assert policy.weights() == {"bad": 1.0, "good": 0.0}
