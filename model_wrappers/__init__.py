"""Model containers: any model behind the Open Inference Protocol V2 gRPC API.

Clipper's model-abstraction layer: every model version runs in its own
container behind one batched prediction API, so the frontend can batch, cache
and select models without knowing their framework. The API is KServe's Open
Inference Protocol V2, so Triton or MLServer can stand in for these containers
and any OIP client (``tritonclient``) can call them.

The public surface is small:

* ``Model`` -- the async adapter interface (``load``, then ``predict`` on
  whole batches), with adapters for python callables, scikit-learn, PyTorch,
  ONNX Runtime and a ``noop`` model;
* ``load_model(ModelSettings)`` -- an adapter, loaded and warmed up, for use in
  process (tests, benchmarks);
* ``clipper model serve`` (``cli``) -- the container's entry point.

Layers, bottom up: ``settings`` and ``signature``; ``base`` and ``adapters``
(picked by ``registry``); ``dataplane`` (validation, errors, metrics, no
transport); ``servicer`` (gRPC) and ``server`` (lifecycle, drain).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipper.model_wrappers.base import Batch, Model
    from clipper.model_wrappers.registry import create_model, load_model
    from clipper.model_wrappers.settings import ModelSettings, ServerSettings
    from clipper.model_wrappers.signature import Signature, TensorSpec

# Lazy, so that ``clipper --help`` (which imports ``cli``) does not import numpy.
_EXPORTS = {
    "Batch": "base",
    "Model": "base",
    "create_model": "registry",
    "load_model": "registry",
    "ModelSettings": "settings",
    "ServerSettings": "settings",
    "Signature": "signature",
    "TensorSpec": "signature",
}
__all__ = [
    "Batch",
    "Model",
    "ModelSettings",
    "ServerSettings",
    "Signature",
    "TensorSpec",
    "create_model",
    "load_model",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
