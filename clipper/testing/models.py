"""Real models trained at test time on ``sklearn.datasets.load_digits``.

Tests, examples and benchmarks across the project share these, so every
artifact is a real, saved model that a model container can serve:

* ``train_logistic_regression`` / ``train_random_forest``: scikit-learn
  classifiers saved with joblib (``--framework sklearn``);
* ``train_torch_mlp``: a small MLP saved twice, as TorchScript and as a
  state_dict for ``clipper.testing.torch_models:digits_mlp``
  (``--framework pytorch [--factory ...]``);
* ``export_onnx``: the same MLP exported to ONNX (``--framework onnx``).

Each trains in about a second on one core, with fixed seeds, on one thread
(a busy 2-core machine makes multi-threaded BLAS and torch thrash). Inputs
are the raw 64 pixel values (0..16): FP64 for scikit-learn, FP32 for torch and
ONNX. ``DigitsModels`` trains each lazily, once, into one directory; the pytest
plugin hands one out per session as the ``digits_models`` fixture. Heavy
imports happen inside the functions.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FACTORY = "clipper.testing.torch_models:digits_mlp"


@functools.cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits: pixels ``(n, 64)`` float64 in 0..16, labels ``(n,)`` int64."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(np.float64), data.target.astype(np.int64)


def digits_batch(rows: int, dtype: type | np.dtype = np.float64, offset: int = 0) -> np.ndarray:
    """``rows`` real digit images (cycling through the data set), as ``dtype``."""
    pixels, _ = digits()
    index = (np.arange(rows) + offset) % len(pixels)
    return np.ascontiguousarray(pixels[index], dtype=dtype)


def train_logistic_regression(directory: Path) -> Path:
    """A ``LogisticRegression`` (predict / predict_proba over 10 classes), as joblib."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    pixels, labels = digits()
    with threadpool_limits(1):
        model = LogisticRegression(max_iter=300).fit(pixels / 16.0, labels)
    # Trained on scaled pixels but served on raw ones: fold the scaling into the weights.
    model.coef_ = model.coef_ / 16.0
    path = Path(directory) / "digits-logistic.joblib"
    joblib.dump(model, path)
    return path


def train_random_forest(directory: Path) -> Path:
    """A ``RandomForestClassifier`` of 50 trees, as joblib (a heavier sklearn model)."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    pixels, labels = digits()
    model = RandomForestClassifier(n_estimators=50, max_depth=12, random_state=0)
    path = Path(directory) / "digits-forest.joblib"
    joblib.dump(model.fit(pixels, labels), path)
    return path


@dataclass(frozen=True)
class TorchMLP:
    """The trained digits MLP, saved both ways a pytorch container loads it."""

    torchscript: Path
    """TorchScript file: ``--framework pytorch --uri <this>``."""
    state_dict: Path
    """state_dict file: ``--framework pytorch --uri <this> --factory <factory>``."""
    factory: str = FACTORY
    """The ``module:callable`` that builds the untrained module."""


def train_torch_mlp(directory: Path, epochs: int = 150) -> TorchMLP:
    """Train ``DigitsMLP`` full-batch with Adam; save TorchScript and a state_dict."""
    import torch

    from clipper.testing.torch_models import digits_mlp

    torch.manual_seed(0)
    pixels, labels = digits()
    x, y = torch.from_numpy(pixels.astype(np.float32)), torch.from_numpy(labels)
    model = digits_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(epochs):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    directory = Path(directory)
    saved = TorchMLP(directory / "digits-mlp.torchscript.pt", directory / "digits-mlp.state.pt")
    torch.save(model.state_dict(), saved.state_dict)
    with warnings.catch_warnings():  # TorchScript is deprecated in torch >= 2.10
        warnings.simplefilter("ignore")
        torch.jit.script(model).save(str(saved.torchscript))
    return saved


def export_onnx(mlp: TorchMLP, directory: Path) -> Path:
    """The trained MLP as ONNX: input ``input`` FP32 ``[-1, 64]``, output ``output``."""
    import torch

    from clipper.testing.torch_models import digits_mlp

    model = digits_mlp()
    model.load_state_dict(torch.load(mlp.state_dict, weights_only=True))
    model.eval()
    path = Path(directory) / "digits-mlp.onnx"
    example = (torch.zeros(2, 64),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the TorchScript-based exporter: ~0.2 s instead of ~6 s
            torch.onnx.export(
                model,
                example,
                str(path),
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                dynamo=False,
            )
        except Exception:  # gone from newer torch: the torch.export-based one
            torch.onnx.export(
                model,
                example,
                str(path),
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
            )
    return path


class DigitsModels:
    """Every digits model, trained on first use into ``directory``, then reused."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @functools.cached_property
    def logistic_regression(self) -> Path:
        return train_logistic_regression(self.directory)

    @functools.cached_property
    def random_forest(self) -> Path:
        return train_random_forest(self.directory)

    @functools.cached_property
    def torch_mlp(self) -> TorchMLP:
        return train_torch_mlp(self.directory)

    @functools.cached_property
    def onnx(self) -> Path:
        return export_onnx(self.torch_mlp, self.directory)
