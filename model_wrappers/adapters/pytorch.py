"""``pytorch``: a TorchScript file, or a state_dict plus the code that builds the module.

``--uri`` is a TorchScript file (``torch.jit.save``), or -- with ``--factory
module:callable`` -- a state_dict file (``torch.save(module.state_dict())``)
loaded with ``weights_only=True`` into the module the factory returns.

Every batch runs under ``torch.inference_mode`` on the device that
``--device`` picks (``devices.pick_device``): CUDA when asked for and
present; ``cuda`` without a usable GPU fails the load unless
``--cpu-fallback``. Inputs are passed to ``forward`` positionally, in signature order.
A tensor result becomes ``--output-name``; a tuple or list becomes
``<output-name>_0, _1, ...``; a dict keeps its keys.

TorchScript files do not record input shapes: declare them with
``--input-shape`` (and ``--input-datatype``, FP32 by default) so malformed
requests are INVALID_ARGUMENT and the metadata lists the outputs.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clipper.common.errors import ModelLoadError
from clipper.model_wrappers.adapters.python_function import import_object
from clipper.model_wrappers.base import Batch, Model
from clipper.model_wrappers.devices import cpu_threads, pick_device

log = logging.getLogger(__name__)


class TorchModel(Model):
    """A ``torch.nn.Module`` in eval mode on one device."""

    platform = "pytorch_torchscript"
    default_datatype = "FP32"

    def init_worker_thread(self) -> None:
        import torch

        torch.set_num_threads(cpu_threads(self.settings.threads))

    async def load(self) -> None:
        import torch

        if not self.settings.uri:
            raise ModelLoadError("pytorch models need --uri, a TorchScript or state_dict file")
        torch.set_num_threads(cpu_threads(self.settings.threads))
        device = pick_device(
            self.settings.device,
            torch.cuda.is_available(),
            "torch.cuda.is_available() is False",
            self.settings.cpu_fallback,
        )
        self._device = torch.device(device)
        self._module = await self.run_blocking(self._load_module)
        if self.settings.factory:
            self.properties["factory"] = self.settings.factory
        self.properties["device"] = str(self._device)
        threads = await self.run_blocking(torch.get_num_threads)
        log.info("pytorch model runs on %s, %d CPU threads", device, threads)

    def _load_module(self) -> Any:
        import torch

        uri, device = self.settings.uri, self._device
        if self.settings.factory:
            module = import_object(self.settings.factory)()
            module.load_state_dict(torch.load(uri, map_location=device, weights_only=True))
            module.to(device)
        else:
            try:
                with warnings.catch_warnings():  # TorchScript is deprecated; we know
                    warnings.simplefilter("ignore", FutureWarning)
                    module = torch.jit.load(uri, map_location=device)
            except RuntimeError as exc:
                raise ModelLoadError(
                    f"{uri} is not a TorchScript file ({str(exc).splitlines()[0]}); "
                    "for a state_dict, pass --factory module:callable too"
                ) from None
        return module.eval()

    async def predict(self, inputs: Batch) -> Batch:
        specs = self.signature.inputs
        arrays = [inputs[spec.name] for spec in specs] if specs else list(inputs.values())
        return await self.run_blocking(self._forward, arrays)

    def _forward(self, arrays: Sequence[np.ndarray]) -> Batch:
        import torch

        with torch.inference_mode():
            # Request arrays are read-only views of the message: copy, never alias.
            tensors = [torch.from_numpy(np.array(a)).to(self._device) for a in arrays]
            return self._outputs(self._module(*tensors))

    def _outputs(self, result: Any) -> Batch:
        name = self.settings.output_name
        if isinstance(result, Mapping):
            return {str(key): _numpy(value) for key, value in result.items()}
        if isinstance(result, tuple | list):
            return {f"{name}_{i}": _numpy(value) for i, value in enumerate(result)}
        return {name: _numpy(result)}


def _numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().cpu().numpy())
