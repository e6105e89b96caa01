"""Three digits classifiers of clearly different quality, for model selection.

All take the 64 raw pixels (FP64) and answer a class label (``predict``), so
feedback is a zero-one loss and an ensemble is a weighted vote:

* ``good``: logistic regression on every pixel (~97% on the digits);
* ``fair``: logistic regression that looks at three pixels only (~40%);
* ``poor``: logistic regression trained on shuffled labels (~10%).

Each is saved with joblib for ``--framework sklearn``; ``GRADES`` orders them.

``train_forests`` makes the three versions of the digits forest that the Shadow
rollout tests and the README's walk-through use: ``v1`` weak (5 trees of depth
4), ``v2`` strong (100 full trees), ``v3`` worse than both (one tree of depth 3).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from clipper.testing.frontend import start_model_servers
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits

GRADES = ("good", "fair", "poor")
FAIR_PIXELS = [20, 36, 44]


def train_graded(directory: Path) -> dict[str, Path]:
    """Train and save the three models; their joblib paths by grade."""
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    pixels, labels = digits()
    shuffled = np.random.default_rng(0).permutation(labels)
    pick = ColumnTransformer([("pixels", "passthrough", FAIR_PIXELS)])
    models = {
        "good": LogisticRegression(max_iter=300),
        "fair": make_pipeline(pick, LogisticRegression(max_iter=300)),
        "poor": LogisticRegression(max_iter=50),
    }
    paths = {}
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "poor" is meant to be poor: no convergence needed
        for grade, model in models.items():
            # Fit on scaled pixels (fast, well conditioned), then fold the scale into
            # the weights so the model takes the raw 0..16 pixels the apps send.
            model.fit(pixels / 16.0, shuffled if grade == "poor" else labels)
            final = model[-1] if hasattr(model, "steps") else model
            final.coef_ = final.coef_ / 16.0
            paths[grade] = Path(directory) / f"digits-{grade}.joblib"
            joblib.dump(model, paths[grade])
    return paths


FORESTS = {"v1": (5, 4), "v2": (100, None), "v3": (1, 3)}
"""(trees, depth) of each version of the digits forest."""


def train_forests(directory: Path) -> dict[str, Path]:
    """Train and save the forest's versions; their joblib paths by version."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    pixels, labels = digits()
    paths = {}
    for version, (trees, depth) in FORESTS.items():
        model = RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0)
        paths[version] = Path(directory) / f"digits-forest-{version}.joblib"
        joblib.dump(model.fit(pixels, labels), paths[version])
    return paths


def accuracy(path: Path) -> float:
    """A saved model's accuracy on every digit."""
    import joblib

    pixels, labels = digits()
    return float(np.mean(joblib.load(path).predict(pixels) == labels))


def start_graded_versions(directory: Path, grades: Mapping[str, str]) -> list[ModelServer]:
    """``digits`` in one version per grade (``{"v1": "fair", "v2": "good"}``), trained
    into ``directory`` and served side by side, for tests that compare versions.
    The caller stops them."""
    paths = train_graded(directory)
    return start_model_servers(
        [
            {
                "framework": "sklearn",
                "uri": paths[grade],
                "name": "digits",
                "args": ["--threads", "1", "--version", version],
            }
            for version, grade in grades.items()
        ]
    )
