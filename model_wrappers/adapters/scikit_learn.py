"""``sklearn``: a fitted estimator or pipeline saved with ``joblib.dump``.

``--method`` picks ``predict`` or ``predict_proba``. The input signature comes
from the estimator's ``n_features_in_`` (shape ``[-1, n]``, FP64 unless
``--input-datatype`` says otherwise), so a request with the wrong number of
features is INVALID_ARGUMENT before scikit-learn sees it. Estimators without
``n_features_in_`` (text pipelines) accept any single input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from clipper.common.errors import InvalidInput, ModelLoadError
from clipper.model_wrappers.base import Batch, Model
from clipper.model_wrappers.devices import cpu_threads
from clipper.model_wrappers.signature import TensorSpec


class SklearnModel(Model):
    """Calls the estimator's ``predict`` or ``predict_proba`` on each batch."""

    platform = "sklearn_joblib"
    default_datatype = "FP64"

    def init_worker_thread(self) -> None:
        from threadpoolctl import threadpool_limits

        # BLAS pools are process-wide, OpenMP's limit is per thread: set both here.
        threadpool_limits(cpu_threads(self.settings.threads))

    async def load(self) -> None:
        import joblib

        if not self.settings.uri:
            raise ModelLoadError("sklearn models need --uri, the path of a joblib file")
        estimator = await self.run_blocking(joblib.load, self.settings.uri)
        method = self.settings.method
        predict = getattr(estimator, method, None)
        if not callable(predict):
            raise ModelLoadError(f"{type(estimator).__name__} has no {method}() method")
        self._method: Callable[[np.ndarray], Any] = predict
        self._infer_inputs(estimator)
        self.properties |= {"device": "cpu", "method": method, "estimator": _name(estimator)}

    def _infer_inputs(self, estimator: Any) -> None:
        features = getattr(estimator, "n_features_in_", None)
        if self.signature.inputs or not isinstance(features, int):
            return
        datatype = self.settings.input_datatype or "FP64"
        spec = TensorSpec(self.settings.input_name, datatype, (-1, features))
        self.signature = dataclasses.replace(self.signature, inputs=(spec,))

    async def predict(self, inputs: Batch) -> Batch:
        if len(inputs) != 1:
            raise InvalidInput(f"sklearn models take one input; got {', '.join(inputs)}")
        (features,) = inputs.values()
        result = await self.run_blocking(self._method, features)
        return {self.settings.output_name: np.asarray(result)}


def _name(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:  # a Pipeline: name its steps
        return "Pipeline(" + ", ".join(type(step).__name__ for _, step in steps) + ")"
    return type(estimator).__name__
