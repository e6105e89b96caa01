"""Shared fixtures for the policy tests: a simulated bandit and real digits models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from clipper.frontend.selection import Policy


@dataclass
class Run:
    """What a simulated run did: per round, the expected loss of what was served."""

    expected_loss: np.ndarray
    """Round t: the policy's mean loss given its choice (exp4: its weights)."""
    best: float
    """The best model's mean loss."""

    def regret(self, start: int = 0, stop: int | None = None) -> float:
        return float(np.sum(self.expected_loss[start:stop] - self.best))


Simulate = Callable[..., Run]


@pytest.fixture
def simulate() -> Simulate:
    """Run a policy against models whose losses are Bernoulli(means[i]), seeded.

    Pseudo-regret uses the means, so the only noise is in the policy's choices.
    ``means`` may be a function of the round, to simulate a change of quality.
    """

    def run(
        policy: Policy,
        means: Sequence[float] | Callable[[int], Sequence[float]],
        rounds: int,
        seed: int = 0,
        context: str = "",
    ) -> Run:
        rng = np.random.default_rng(seed)
        expected = np.empty(rounds)
        best = np.inf
        for t in range(rounds):
            mu = dict(zip(policy.models, means(t) if callable(means) else means, strict=True))
            best = min(mu.values())
            selection = policy.select(context)
            expected[t] = sum(selection.weights[m] * mu[m] for m in selection.models)
            if len(selection.models) == 1:
                expected[t] = mu[selection.models[0]]
            losses = {m: float(rng.random() < mu[m]) for m in selection.models}
            policy.update(context, selection, losses)
        return Run(expected, best)

    return run


@dataclass(frozen=True)
class DigitsModels:
    """Three real digits classifiers of clearly different quality, and a test set."""

    names: tuple[str, ...]
    probabilities: dict[str, np.ndarray]
    """Each model's predict_proba on the test set: (n_test, 10)."""
    labels: np.ndarray
    accuracy: dict[str, float]


@pytest.fixture(scope="session")
def digits_models() -> DigitsModels:
    """Trained at test time (under a second): logistic regression on all 64 pixels;
    the same on 3 pixels and 60 samples; the same on shuffled labels."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    x = x / 16.0  # pixels in [0, 1]: lbfgs converges in a few hundred steps
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    train, test = slice(0, 1000), slice(1000, None)
    few_pixels = [21, 36, 43]
    shuffled = np.random.default_rng(1).permutation(y[train])

    good = LogisticRegression(max_iter=500).fit(x[train], y[train])
    weak = LogisticRegression(max_iter=500).fit(x[:60, few_pixels], y[:60])
    noise = LogisticRegression(max_iter=500).fit(x[train], shuffled)
    probabilities = {
        "logreg-all-pixels": good.predict_proba(x[test]),
        "logreg-3-pixels": _all_classes(weak, weak.predict_proba(x[test][:, few_pixels])),
        "logreg-shuffled": noise.predict_proba(x[test]),
    }
    labels = y[test]
    accuracy = {m: float(np.mean(p.argmax(axis=1) == labels)) for m, p in probabilities.items()}
    return DigitsModels(tuple(probabilities), probabilities, labels, accuracy)


def _all_classes(model: object, proba: np.ndarray) -> np.ndarray:
    """predict_proba's columns are the classes seen in training; pad to all 10."""
    out = np.zeros((proba.shape[0], 10))
    out[:, model.classes_] = proba  # type: ignore[attr-defined]
    return out
