"""The Shadow rollout's sequential test: its boundaries, its minimum and maximum
samples, and its error rates measured on simulated paired comparisons."""

from __future__ import annotations

import math
import random

import pytest

from clipper.common.rollout.sequential import Paired, SequentialTest, decide


def test_defaults_decide_after_a_net_eight_untied_pairs() -> None:
    test = SequentialTest(min_samples=0)
    assert math.ceil(test.upper / test.step) == 8
    assert decide(test, Paired(wins=7)).verdict == "continue"
    assert decide(test, Paired(wins=8)).verdict == "promote"
    assert decide(test, Paired(losses=8)).verdict == "reject"
    assert decide(test, Paired(wins=10, losses=3, ties=50)).verdict == "continue"


def test_ties_count_as_samples_but_move_nothing() -> None:
    test = SequentialTest(min_samples=0)
    decision = decide(test, Paired(ties=500))
    assert decision.verdict == "continue"
    assert decision.log_ratio == 0


def test_nothing_is_decided_before_the_minimum_samples() -> None:
    test = SequentialTest(min_samples=30)
    early = decide(test, Paired(wins=20))
    assert early.verdict == "continue"
    assert "20 of at least 30" in early.why
    assert decide(test, Paired(wins=20, ties=10)).verdict == "promote"


def test_an_undecided_test_rejects_at_the_maximum_samples() -> None:
    test = SequentialTest(min_samples=0, max_samples=100)
    assert decide(test, Paired(wins=50, losses=45, ties=4)).verdict == "continue"
    decision = decide(test, Paired(wins=50, losses=45, ties=5))
    assert decision.verdict == "reject"
    assert "maxSamples" in decision.why
    assert decision.inconclusive  # no evidence either way: not "worse"


def test_the_evidence_cites_the_numbers() -> None:
    test = SequentialTest(min_samples=0)
    paired = Paired(wins=9, losses=1, ties=20, stable_loss=10.0, candidate_loss=2.0)
    text = decide(test, paired).evidence(test)
    for part in ("n=30", "better 9", "worse 1", "tied 20", "0.067 vs 0.333", "alpha=0.05"):
        assert part in text


@pytest.mark.parametrize(
    "settings",
    [
        {"alpha": 0.6},
        {"beta": 0},
        {"delta": 0.5},
        {"min_samples": 10, "max_samples": 5},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        SequentialTest(**settings)  # type: ignore[arg-type]


def test_paired_counts_add_and_subtract() -> None:
    a = Paired(1, 2, 3, 0.5, 1.5)
    b = Paired(4, 5, 6, 1.0, 2.0)
    assert (a + b) - b == a
    assert Paired().mean_losses() == (None, None)


def _run(test: SequentialTest, p_win: float, p_tie: float, rng: random.Random) -> str:
    paired = Paired()
    while True:
        draw = rng.random()
        if draw < p_tie:
            paired = paired + Paired(ties=1)
        elif rng.random() < p_win:
            paired = paired + Paired(wins=1)
        else:
            paired = paired + Paired(losses=1)
        verdict = decide(test, paired).verdict
        if verdict != "continue":
            return verdict


@pytest.mark.parametrize(("p_win", "wrong"), [(0.4, "promote"), (0.6, "reject")])
def test_error_rates_stay_near_alpha_and_beta(p_win: float, wrong: str) -> None:
    """Simulated at the hypotheses themselves (a candidate delta worse, delta better):
    the wrong verdict comes at most about alpha (beta) of the time."""
    test = SequentialTest()
    rng = random.Random(16)
    runs = 2000
    wrongs = sum(_run(test, p_win, 0.5, rng) == wrong for _ in range(runs))
    assert wrongs / runs <= 0.05 + 0.02  # Wald's bound, plus the simulation's noise


def test_a_clearly_better_candidate_is_promoted_quickly() -> None:
    """digits v1 (~40%) vs v2 (~97%): most labels are ties or candidate wins."""
    test = SequentialTest()
    rng = random.Random(1)
    assert all(_run(test, 0.98, 0.4, rng) == "promote" for _ in range(200))
