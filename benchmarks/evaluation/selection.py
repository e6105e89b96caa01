"""Selection and ensembles, stated honestly: accuracy and regret with confidence intervals.

Two sources of numbers, kept apart in the results:

* **in-process** (``simulated``, ``drift``, ``ensembles``): the frontend's own
  policy classes (``clipper.frontend.selection``) replayed against *recorded*
  predictions of real scikit-learn models on held-out data, with label feedback
  after every query, over many seeds: fast, and the confidence intervals need
  the seeds. Regret is counted on the same stream against the best single model
  in hindsight and against an oracle that is right whenever any model is.
* **through the frontend** (``frontend``): the three graded digits models served
  by real containers behind a real frontend with exp3, queried and given the
  label over REST one query at a time; its cumulative accuracy beside the
  in-process replay of the same three models and policy.

Drift: halfway through the stream the best model starts answering at random
(a model degraded by a bad deploy); the result is how many queries each policy
takes to send it under 20% of the traffic again, and the accuracy in windows.
Exp4's ensemble accuracy is compared with the best single model on digits and
on scikit-learn's packaged breast-cancer set (nothing downloaded).
"""

from __future__ import annotations

import http.client
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from clipper.frontend.selection import POLICIES
from clipper.testing.frontend import route, start_model_servers
from clipper.testing.graded_models import GRADES, train_graded
from clipper.testing.models import digits

from . import ours as our_side
from .record import Options

LEARNING = ["exp3", "exp4", "epsilon_greedy", "thompson"]
Outputs = dict[str, np.ndarray]


def _fit(models: dict[str, Any], x: np.ndarray, y: np.ndarray) -> None:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in models.values():
            model.fit(x, y)


def digits_models() -> tuple[Outputs, Outputs, np.ndarray]:
    """Five digits models of falling quality: (labels, class scores, true labels)
    on the 797 digits none of them was trained on."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    x, y = digits()
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order] / 16.0, y[order]

    def pixels(columns: list[int]) -> Any:
        pick = ColumnTransformer([("p", "passthrough", columns)])
        return make_pipeline(pick, LogisticRegression(max_iter=300))

    models = {
        "lr-all": LogisticRegression(max_iter=300),
        "forest-small": RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0),
        "lr-8px": pixels([10, 13, 20, 27, 36, 43, 51, 53]),
        "lr-3px": pixels([20, 36, 44]),
        "shuffled": LogisticRegression(max_iter=100),
    }
    y_train = dict.fromkeys(models, y[:1000])
    y_train["shuffled"] = np.random.default_rng(1).permutation(y[:1000])
    for name, model in models.items():
        _fit({name: model}, x[:1000], y_train[name])
    return _record(models, x[1000:], y[1000:])


def cancer_models() -> tuple[Outputs, Outputs, np.ndarray]:
    """Four breast-cancer models (sklearn's packaged copy): the second data set."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    models = {
        "lr": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        "naive-bayes": GaussianNB(),
        "stump": DecisionTreeClassifier(max_depth=1, random_state=0),
        "tree-2-features": DecisionTreeClassifier(max_depth=3, random_state=0),
    }
    train = 300
    _fit({k: v for k, v in models.items() if k != "tree-2-features"}, x[:train], y[:train])
    _fit({"t": models["tree-2-features"]}, x[:train, :2], y[:train])
    labels, scores = {}, {}
    for name, model in models.items():
        features = x[train:, :2] if name == "tree-2-features" else x[train:]
        labels[name] = model.predict(features)
        scores[name] = model.predict_proba(features)
    return labels, scores, y[train:]


def _record(
    models: dict[str, Any], x: np.ndarray, y: np.ndarray
) -> tuple[Outputs, Outputs, np.ndarray]:
    labels, scores = {}, {}
    for name, model in models.items():
        labels[name] = model.predict(x)
        proba = np.zeros((len(y), 10))
        proba[:, model.classes_] = model.predict_proba(x)
        scores[name] = proba
    return labels, scores, y


def replay(
    policy_name: str,
    outputs: Outputs,
    truth: np.ndarray,
    rounds: int,
    seed: int,
    drift_at: int | None = None,
    degraded: str | None = None,
) -> dict[str, np.ndarray]:
    """One stream of ``rounds`` queries drawn from the test set; per round whether
    the answer was right, whether the best single / any model was, and the share
    of this query that went to ``degraded`` (exp4: its weight)."""
    names = list(outputs)
    policy = POLICIES[policy_name](names, {}, seed=seed)
    rng = np.random.default_rng(10_000 + seed)  # the stream's own: not the policy's
    noise = np.random.default_rng(20_000 + seed)
    picks = rng.integers(len(truth), size=rounds)
    right = np.zeros(rounds, bool)
    share = np.zeros(rounds)
    correct = {m: np.zeros(rounds, bool) for m in names}
    for t, i in enumerate(picks):
        rows = {m: outputs[m][i] for m in names}
        if drift_at is not None and t >= drift_at and degraded:
            rows[degraded] = noise.integers(10)
        for m in names:
            correct[m][t] = rows[m] == truth[i]
        selection = policy.select("")
        answered = {m: np.asarray(rows[m]) for m in selection.models}
        combined = policy.combine("", selection, answered)
        right[t] = int(np.asarray(combined.output).reshape(-1)[0]) == truth[i]
        if degraded:
            share[t] = (
                selection.weights.get(degraded, 0.0)
                if len(selection.models) > 1
                else (1.0 if selection.models[0] == degraded else 0.0)
            )
        policy.update("", selection, {m: policy.loss(answered[m], truth[i]) for m in answered})
    best = max(names, key=lambda m: correct[m].sum())
    oracle = np.any([correct[m] for m in names], axis=0)
    return {"right": right, "best": correct[best], "oracle": oracle, "share": share}


def _ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of a 95% normal interval over seeds."""
    values = np.asarray(values, dtype=float)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(half)


def stationary(outputs: Outputs, truth: np.ndarray, rounds: int, seeds: int) -> dict[str, Any]:
    checkpoints = np.unique(np.linspace(rounds / 20, rounds, 20).astype(int))
    policies = {}
    for name in LEARNING:
        runs = [replay(name, outputs, truth, rounds, seed) for seed in range(seeds)]
        accuracy = np.array([np.cumsum(r["right"])[checkpoints - 1] / checkpoints for r in runs])
        regret_best = np.array([np.cumsum(r["best"].astype(int) - r["right"]) for r in runs])
        regret_oracle = np.array([np.cumsum(r["oracle"].astype(int) - r["right"]) for r in runs])
        policies[name] = {
            "accuracy": _ci([r["right"].mean() for r in runs]),
            "accuracy_curve": [_ci(col) for col in accuracy.T],
            "regret_best": _ci(regret_best[:, -1]),
            "regret_best_curve": [_ci(regret_best[:, k - 1]) for k in checkpoints],
            "regret_oracle": _ci(regret_oracle[:, -1]),
            "best_accuracy": _ci([r["best"].mean() for r in runs]),
            "oracle_accuracy": _ci([r["oracle"].mean() for r in runs]),
        }
    singles = {m: float(np.mean(outputs[m] == truth)) for m in outputs}
    return {"checkpoints": checkpoints, "policies": policies, "singles": singles}


def drift(outputs: Outputs, truth: np.ndarray, rounds: int, seeds: int) -> dict[str, Any]:
    degraded = max(outputs, key=lambda m: float(np.mean(outputs[m] == truth)))
    at = rounds // 2
    window = max(10, rounds // 40)
    policies = {}
    for name in LEARNING:
        runs = [replay(name, outputs, truth, rounds, s, at, degraded) for s in range(seeds)]
        shares = np.array([_windows(r["share"], window) for r in runs])
        accuracy = np.array([_windows(r["right"].astype(float), window) for r in runs])
        recovery = [_recovery(r["share"], at, window) for r in runs]
        policies[name] = {
            "share_curve": [_ci(col) for col in shares.T],
            "accuracy_curve": [_ci(col) for col in accuracy.T],
            "recovery_queries": _ci([r for r in recovery if r is not None] or [rounds - at]),
            "recovered_runs": sum(r is not None for r in recovery),
        }
    return {
        "degraded": degraded,
        "at": at,
        "window": window,
        "rounds": rounds,
        "seeds": seeds,
        "policies": policies,
    }


def _windows(values: np.ndarray, window: int) -> np.ndarray:
    usable = len(values) // window * window
    return values[:usable].reshape(-1, window).mean(axis=1)


def _recovery(share: np.ndarray, at: int, window: int) -> int | None:
    """Queries after the drift until a window's share of the degraded model < 20%."""
    after = share[at:]
    for start in range(0, len(after) - window + 1, window // 2):
        if after[start : start + window].mean() < 0.2:
            return start + window
    return None


def ensembles(
    sets: dict[str, tuple[Outputs, Outputs, np.ndarray]], rounds: int, seeds: int
) -> list[dict[str, Any]]:
    """Exp4 (label vote, learned weights) against the best single model, and a
    static unweighted vote and score average, per data set."""
    rows = []
    for name, (labels, scores, truth) in sets.items():
        singles = {m: float(np.mean(labels[m] == truth)) for m in labels}
        best = max(singles, key=lambda m: singles[m])
        runs = [replay("exp4", labels, truth, rounds, seed) for seed in range(seeds)]
        mean_scores = np.mean([scores[m] for m in scores], axis=0)
        rows.append(
            {
                "data": name,
                "models": singles,
                "best_single": best,
                "best_single_accuracy": singles[best],
                "exp4_accuracy": _ci([r["right"].mean() for r in runs]),
                "exp4_accuracy_second_half": _ci([r["right"][rounds // 2 :].mean() for r in runs]),
                "oracle_accuracy": _ci([r["oracle"].mean() for r in runs]),
                "score_average_accuracy": float(np.mean(mean_scores.argmax(axis=1) == truth)),
            }
        )
    return rows


def through_frontend(queries: int, seed: int = 0) -> dict[str, Any]:
    """The graded models behind a real frontend with exp3: predict, then feedback."""
    x, y = digits()
    order = np.random.default_rng(seed).permutation(len(y))[:queries]
    with tempfile.TemporaryDirectory(prefix="clipper-eval-selection-") as tmp:
        paths = train_graded(Path(tmp))
        specs = [
            {"framework": "sklearn", "name": g, "uri": str(paths[g]), "args": our_side.ONE_THREAD}
            for g in GRADES
        ]
        servers = start_model_servers(specs)
        try:
            app = route(
                "graded",
                {s.name: [s.address] for s in servers},
                latency_slo_ms=1000,
                selection={"type": "exp3"},
                cache={"enabled": False},
            )
            with our_side.frontend(Path(tmp) / "routes.yaml", app) as process:
                right = _query_loop(process.url, x[order], y[order])
        finally:
            for server in servers:
                server.stop()
        import joblib

        labels = {g: joblib.load(paths[g]).predict(x) for g in GRADES}
    replays = [replay("exp3", labels, y, queries, s)["right"].mean() for s in range(20)]
    return {
        "policy": "exp3",
        "queries": queries,
        "accuracy": float(np.mean(right)),
        "accuracy_curve": np.cumsum(right) / np.arange(1, len(right) + 1),
        "in_process_accuracy": _ci(replays),
        "singles": {g: float(np.mean(labels[g] == y)) for g in GRADES},
    }


def _query_loop(url: str, x: np.ndarray, y: np.ndarray) -> list[bool]:
    """One client, bounded by the number of queries: predict, then the label."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _post(connection, path, body)

    right = []
    for row, label in zip(x, y, strict=True):
        answer = post("/graded/predict", {"input": row.tolist()})
        right.append(not answer["default"] and int(answer["output"]) == int(label))
        post("/graded/feedback", {"query_id": answer["query_id"], "label": int(label)})
    connection.close()
    return right


def _post(connection: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> Any:
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    answer = connection.getresponse()
    text = answer.read()
    if answer.status != 200:
        raise RuntimeError(f"{path}: {answer.status} {text[:300]!r}")
    return json.loads(text)


def run(options: Options) -> dict[str, Any]:
    rounds, seeds = (300, 3) if options.quick else (2000, 10)
    labels, scores, truth = digits_models()
    cancer = cancer_models()
    return {
        "rounds": rounds,
        "seeds": seeds,
        "digits": stationary(labels, truth, rounds, seeds),
        "drift": drift(labels, truth, 2 * rounds, seeds),
        "ensembles": ensembles(
            {"digits": (labels, scores, truth), "breast_cancer": cancer}, rounds, seeds
        ),
        "frontend": through_frontend(60 if options.quick else 600),
        "notes": [
            "digits, drift and ensembles: the frontend's policy classes in-process against "
            "recorded predictions (many seeds); frontend: real containers and frontend, "
            "one seed, compared with the in-process replay of the same models and policy."
        ],
    }
