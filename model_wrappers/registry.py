"""Framework name -> adapter class, imported only when that framework is served.

A container installs one framework, so naming ``sklearn`` must never import
torch: the table holds import paths, not classes. ``load_model`` is the one way
a model comes to life -- server, tests and benchmarks all use it -- and turns
whatever goes wrong while loading into a ``ModelLoadError`` with one readable
message.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging

import numpy as np

from clipper.common.errors import ClipperError, ModelLoadError
from clipper.common.protocol.tensors import DTYPES
from clipper.model_wrappers.base import Model
from clipper.model_wrappers.remote import local_copy
from clipper.model_wrappers.settings import ModelSettings
from clipper.model_wrappers.signature import TensorSpec

log = logging.getLogger(__name__)

ADAPTERS: dict[str, str] = {
    "python": "clipper.model_wrappers.adapters.python_function:PythonFunctionModel",
    "sklearn": "clipper.model_wrappers.adapters.scikit_learn:SklearnModel",
    "pytorch": "clipper.model_wrappers.adapters.pytorch:TorchModel",
    "onnx": "clipper.model_wrappers.adapters.onnx_runtime:OnnxModel",
    "noop": "clipper.model_wrappers.adapters.noop:NoopModel",
}


def model_class(framework: str) -> type[Model]:
    """The adapter class for ``framework``; importing it imports the framework."""
    try:
        path = ADAPTERS[framework]
    except KeyError:
        raise ModelLoadError(
            f"unknown framework '{framework}'; expected one of {', '.join(ADAPTERS)}"
        ) from None
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"the {framework} adapter needs a package that is not installed ({exc}); "
            f"install clipper-k8s[{framework}]"
        ) from None
    cls: type[Model] = getattr(module, class_name)
    return cls


def create_model(settings: ModelSettings) -> Model:
    """An adapter for ``settings``, not loaded yet."""
    return model_class(settings.framework)(settings)


async def load_model(settings: ModelSettings) -> Model:
    """Create, load and warm up the model that ``settings`` describe."""
    model = create_model(settings)
    await load(model)
    return model


async def load(model: Model) -> None:
    """Load and warm up ``model``; any failure is a ``ModelLoadError``."""
    try:
        async with local_copy(model):
            await model.load()
    except ModelLoadError:
        raise
    except ClipperError as exc:
        raise ModelLoadError(exc.message) from exc
    except Exception as exc:
        raise ModelLoadError(f"{type(exc).__name__}: {exc}") from exc
    await warm_up(model)


async def warm_up(model: Model) -> None:
    """Predict one all-zeros row, and learn the outputs from the answer.

    Only when every input dimension but the batch is known and numeric. A model
    that cannot predict zeros is still served (zeros may be outside its domain);
    its outputs stay unknown in the metadata, and a warning says why.
    """
    inputs = model.signature.inputs
    if not model.warm_up or not inputs:
        return
    if any(-1 in spec.shape[1:] or spec.datatype == "BYTES" for spec in inputs):
        return
    batch = {spec.name: np.zeros((1, *spec.shape[1:]), DTYPES[spec.datatype]) for spec in inputs}
    try:
        outputs = await model.predict(batch)
        model.signature.check_outputs(outputs, 1)
    except Exception as exc:
        log.warning("warm-up on one all-zeros row failed, outputs are unknown: %s", exc)
        return
    if not model.signature.outputs:
        specs = tuple(TensorSpec.of(name, array) for name, array in outputs.items())
        model.signature = dataclasses.replace(model.signature, outputs=specs)
