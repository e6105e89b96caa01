"""The three benchmark models, built the same way in every server's process.

Runs inside the peers' virtualenvs (MLServer, Ray Serve), which do not have
clipper installed: only numpy, joblib/scikit-learn and torch. ``make(kind, uri)``
returns ``predict(batch) -> batch`` for ``noop`` (the rows back), ``sklearn``
(``estimator.predict``, as our sklearn container's default method) and ``torch``
(a TorchScript module on CPU, one thread, as our pytorch container runs it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def make(kind: str, uri: str) -> Callable[[np.ndarray], np.ndarray]:
    if kind == "noop":
        return lambda batch: batch
    if kind == "sklearn":
        import joblib

        return joblib.load(uri).predict  # type: ignore[no-any-return]
    if kind == "torch":
        import torch

        torch.set_num_threads(1)
        module = torch.jit.load(uri, map_location="cpu").eval()

        def forward(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                rows = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
                return module(rows).numpy()  # type: ignore[no-any-return]

        return forward
    raise ValueError(f"unknown model kind {kind!r}")
