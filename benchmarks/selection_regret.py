"""Regret of each selection policy, side by side, on two environments.

1. Simulated: three models with Bernoulli losses of mean 0.2, 0.5 and 0.8.
2. Digits: three real scikit-learn classifiers trained here (logistic regression
   on all 64 pixels; on 3 pixels and 60 samples; on shuffled labels), fed test
   digits with the true label as feedback, as the frontend would.

Regret is pseudo-regret against the best single model (expected loss of what
was served minus the best model's mean loss), averaged over seeds; "vs uniform"
divides by the regret of picking a model uniformly at random. Usage:
``python benchmarks/selection_regret.py [--rounds 5000] [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from clipper.frontend.selection import POLICIES, Policy

LEARNING = ["exp3", "exp4", "epsilon_greedy", "thompson"]


def simulated(policy: Policy, rounds: int, seed: int) -> tuple[float, float]:
    means = dict(zip(policy.models, (0.2, 0.5, 0.8), strict=True))
    rng = np.random.default_rng(seed)
    regret = 0.0
    for _ in range(rounds):
        selection = policy.select("")
        if len(selection.models) == 1:
            regret += means[selection.models[0]] - 0.2
        else:  # exp4: the expected loss of a model drawn by the ensemble's weights
            regret += sum(selection.weights[m] * means[m] for m in selection.models) - 0.2
        policy.update("", selection, {m: float(rng.random() < means[m]) for m in selection.models})
    return regret, rounds * (0.5 - 0.2)


def digits_environment() -> tuple[dict[str, np.ndarray], np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    few = [21, 36, 43]
    good = LogisticRegression(max_iter=500).fit(x[:1000], y[:1000])
    weak = LogisticRegression(max_iter=500).fit(x[:60, few], y[:60])
    noise = LogisticRegression(max_iter=500).fit(
        x[:1000], np.random.default_rng(1).permutation(y[:1000])
    )
    weak_proba = np.zeros((len(y) - 1000, 10))
    weak_proba[:, weak.classes_] = weak.predict_proba(x[1000:, few])
    outputs = {
        "all-pixels": good.predict_proba(x[1000:]),
        "3-pixels": weak_proba,
        "shuffled": noise.predict_proba(x[1000:]),
    }
    return outputs, y[1000:]


def digits(env: tuple[dict[str, np.ndarray], np.ndarray]) -> Callable[..., tuple[float, float]]:
    outputs, labels = env
    loss = {m: (p.argmax(axis=1) != labels).astype(float) for m, p in outputs.items()}
    mean = {m: float(v.mean()) for m, v in loss.items()}
    best = min(mean.values())

    def run(policy: Policy, rounds: int, seed: int) -> tuple[float, float]:
        rng = np.random.default_rng(seed)
        regret = 0.0
        for _ in range(rounds):
            i = int(rng.integers(len(labels)))
            selection = policy.select("")
            rows = {m: outputs[m][i] for m in selection.models}
            combined = policy.combine("", selection, rows)
            regret += float(np.argmax(combined.output) != labels[i]) - best
            policy.update("", selection, {m: policy.loss(rows[m], labels[i]) for m in rows})
        return regret, rounds * (np.mean(list(mean.values())) - best)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    environments = {"simulated": simulated, "digits": digits(digits_environment())}
    print(f"{args.rounds} rounds, mean over {args.seeds} seeds")
    print(f"{'environment':<10} {'policy':<15} {'regret':>8} {'vs uniform':>10} {'us/round':>9}")
    for env_name, run in environments.items():
        for name in [*LEARNING, "fixed"]:
            regrets, uniform = [], 0.0
            start = time.perf_counter()
            for seed in range(args.seeds):
                models = ["all-pixels", "3-pixels", "shuffled"]
                params = {"model": "3-pixels"} if name == "fixed" else {}
                policy = POLICIES[name](models, params, seed=seed)
                # The environment's own stream: sharing the policy's seed would correlate
                # losses with the policy's draws (an adaptive adversary).
                regret, uniform = run(policy, args.rounds, 1000 + seed)
                regrets.append(regret)
            per_round = (time.perf_counter() - start) / (args.seeds * args.rounds) * 1e6
            mean = float(np.mean(regrets))
            print(
                f"{env_name:<10} {name:<15} {mean:>8.1f} {mean / uniform:>10.3f} {per_round:>9.1f}"
            )
    print("(digits: regret counts the ensemble's own mistakes, so exp4 can go below 0;")
    print(" fixed is pinned to the middle model as a baseline)")


if __name__ == "__main__":
    main()
