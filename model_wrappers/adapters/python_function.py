"""``python``: serve a plain Python function, as Clipper's python deployer did.

``--uri`` names the function as ``package.module:function`` (any importable
module; ``module:Class.attribute`` works too), or is the path of a file written
with ``cloudpickle.dump(function, f)``.

The contract, kept small so any function fits:

* it is called once per batch. A model with one input gets that input's array
  (rows first, read-only: it is a view of the request); a model with several
  inputs gets ``{name: array}``;
* it returns an array -- or anything ``numpy.asarray`` takes, e.g. a list of
  strings -- which becomes the output ``--output-name``; or a dict
  ``{output name: array}``. Every output has one row per input row;
* whatever it raises comes back to the client as INTERNAL with its message;
* an ``async def`` function is awaited on the event loop (it must not block);
  any other function runs on the model's worker threads;
* the device it should use (``cuda`` or ``cpu``, from ``--device`` and the GPUs
  this container sees) is in ``CLIPPER_DEVICE`` before its module is
  imported, so the module can put its model there. The server checks only that
  a GPU is visible; the function decides what runs on it.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from clipper.common.errors import ModelLoadError
from clipper.model_wrappers.base import Batch, Model
from clipper.model_wrappers.devices import pick_device, visible_gpus

DEVICE_ENV = "CLIPPER_DEVICE"
"""Where the function's model should run; not a ``CLIPPER_MODEL_`` setting, so a
value set here never reads back as ``--device``."""


def import_object(spec: str) -> Any:
    """The object that ``package.module:attribute[.attribute...]`` names."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ModelLoadError(f"'{spec}' is not of the form package.module:attribute")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def resolve(uri: str) -> Callable[..., Any]:
    """The function that ``uri`` names: ``module:attribute`` or a cloudpickle file."""
    if not uri:
        raise ModelLoadError("python models need --uri module:function or a cloudpickle file")
    if ":" in uri and not Path(uri).exists():
        target = import_object(uri)
    else:
        import cloudpickle

        with open(uri, "rb") as file:
            target = cloudpickle.load(file)
    if not callable(target):
        raise ModelLoadError(f"{uri} is a {type(target).__name__}, not a function")
    return target


def as_outputs(result: object, output_name: str) -> Batch:
    """A function's answer as ``{name: array}``."""
    if isinstance(result, Mapping):
        return {str(name): np.asarray(value) for name, value in result.items()}
    return {output_name: np.asarray(result)}


class PythonFunctionModel(Model):
    """Calls a user function once per batch."""

    platform = "python_function"
    warm_up = False  # user code: never call it with made-up data

    async def load(self) -> None:
        gpus = visible_gpus()
        device = pick_device(
            self.settings.device,
            gpus > 0,
            "no /dev/nvidia* device visible to this container",
            self.settings.cpu_fallback,
        )
        os.environ[DEVICE_ENV] = device  # before the user's module is imported
        self._fn = await self.run_blocking(resolve, self.settings.uri)
        self._is_async = inspect.iscoroutinefunction(self._fn)
        self.properties["device"] = device

    async def predict(self, inputs: Batch) -> Batch:
        argument: object = inputs if len(inputs) > 1 else next(iter(inputs.values()))
        if self._is_async:
            result = await self._fn(argument)
        else:
            result = await self.run_blocking(self._fn, argument)
        return as_outputs(result, self.settings.output_name)
