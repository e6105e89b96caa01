"""Train the digits example's models into ``examples/digits/models/``.

``make run-example`` runs this before ``clipper run -f examples/digits``; it skips
every model whose file is already there, so it costs a few seconds once and
nothing after (delete ``models/`` to retrain). Models are trained on 75% of
scikit-learn's ``load_digits`` (8x8 images, pixel values 0..16, 64 features) and
scored on the rest, with fixed seeds:

- ``digits-logreg.joblib``: scaling + logistic regression (scikit-learn);
- ``digits-forest-v1.joblib``: a deliberately small random forest (5 shallow
  trees), the weak model whose selection weight falls as feedback comes in;
- ``digits-forest-v2.joblib``: its better second version (100 full trees), what
  ``swap/forest-v2.yaml`` rolls out (``swap/forest-v2-shadow.yaml``: in Shadow mode);
- ``digits-forest-v3.joblib``: a worse third version (one tree of depth 3), which
  ``swap/forest-v3-shadow.yaml`` tries in Shadow mode, to be rejected;
- ``digits-mlp.onnx``: a small MLP trained with PyTorch and exported to ONNX with
  an argmax at the end, so it answers labels as the others do (served by ONNX
  Runtime, so serving never imports torch).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MODELS = Path(__file__).resolve().parent / "models"


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    split = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    return tuple(np.asarray(part) for part in split)  # type: ignore[return-value]


def logreg(x: np.ndarray, y: np.ndarray, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    joblib.dump(model, path)
    return model.predict


def forest(trees: int, depth: int | None) -> Callable[..., Callable[[np.ndarray], np.ndarray]]:
    def train(x: np.ndarray, y: np.ndarray, path: Path) -> Callable[[np.ndarray], np.ndarray]:
        import joblib
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0)
        joblib.dump(model.fit(x, y), path)
        return model.predict

    return train


def argmax_module() -> Any:
    import torch

    class _ArgMax(torch.nn.Module):
        def forward(self, scores: torch.Tensor) -> torch.Tensor:
            return scores.argmax(dim=1)

    return _ArgMax()


def mlp(x: np.ndarray, y: np.ndarray, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    features = torch.from_numpy(x.astype(np.float32) / 16.0)
    labels = torch.from_numpy(y.astype(np.int64))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(features), labels).backward()
        optimizer.step()
    net.eval()
    # Serve raw pixels: fold the /16 scaling into the first layer.
    first = net[0]
    assert isinstance(first, torch.nn.Linear)
    with torch.no_grad():
        first.weight.div_(16.0)
    labels_of = torch.nn.Sequential(net, argmax_module())  # answer labels, as the other models do
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            labels_of,
            (torch.zeros(2, 64),),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            dynamo=False,
        )

    def predict(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return labels_of(torch.from_numpy(rows.astype(np.float32))).numpy()

    return predict


TRAINERS = {
    "digits-logreg.joblib": logreg,
    "digits-forest-v1.joblib": forest(trees=5, depth=4),
    "digits-forest-v2.joblib": forest(trees=100, depth=None),
    "digits-forest-v3.joblib": forest(trees=1, depth=3),
    "digits-mlp.onnx": mlp,
}


def main() -> int:
    MODELS.mkdir(exist_ok=True)
    missing = {name: train for name, train in TRAINERS.items() if not (MODELS / name).exists()}
    if not missing:
        print(f"digits example: every model is in {MODELS}")
        return 0
    x_train, x_test, y_train, y_test = data()
    for name, train in missing.items():
        predict = train(x_train, y_train, MODELS / name)
        accuracy = float((predict(x_test) == y_test).mean())
        print(f"digits example: trained {name:<24} held-out accuracy {accuracy:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
