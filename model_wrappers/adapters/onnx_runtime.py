"""``onnx``: an ``.onnx`` file run by ONNX Runtime.

The model declares its own signature: input and output names, element types
and shapes come from the session (symbolic dimensions, such as a dynamic batch,
become -1). With ``--device auto`` or ``cuda`` the session asks for the CUDA
execution provider when this onnxruntime build has it. ``auto`` falls back to
CPU; ``cuda`` fails the load when the build lacks CUDA or the session could not
use it, unless ``--cpu-fallback``. The provider the session really got is what
the logs and metadata report.
"""

from __future__ import annotations

import logging
from typing import Any

from clipper.common.errors import ModelLoadError
from clipper.model_wrappers.base import Batch, Model
from clipper.model_wrappers.devices import cpu_threads, pick_device
from clipper.model_wrappers.signature import Signature, TensorSpec

log = logging.getLogger(__name__)

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"

# ONNX element types (as onnxruntime names them) -> Open Inference Protocol datatypes.
ONNX_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def tensor_spec(node: Any) -> TensorSpec:
    """The spec of a session input or output (``NodeArg``)."""
    datatype = ONNX_TYPES.get(node.type)
    if datatype is None:
        raise ModelLoadError(f"tensor '{node.name}' has type {node.type}, which OIP cannot carry")
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in node.shape)
    return TensorSpec(node.name, datatype, shape)


class OnnxModel(Model):
    """An ``onnxruntime.InferenceSession``."""

    platform = "onnxruntime_onnx"

    async def load(self) -> None:
        import onnxruntime as ort

        if not self.settings.uri:
            raise ModelLoadError("onnx models need --uri, the path of an .onnx file")
        available = ort.get_available_providers()
        device = pick_device(
            self.settings.device,
            CUDA in available,
            f"onnxruntime providers: {available}",
            self.settings.cpu_fallback,
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads(self.settings.threads)
        providers = [CUDA, CPU] if device == "cuda" else [CPU]
        self._session = await self.run_blocking(
            ort.InferenceSession, self.settings.uri, sess_options=options, providers=providers
        )
        self._describe(device)

    def _describe(self, device: str) -> None:
        session = self._session
        if device == "cuda" and CUDA not in session.get_providers():
            device = pick_device(
                "cuda" if self.settings.device == "cuda" else "auto",
                False,
                f"the session got providers {session.get_providers()}",
                self.settings.cpu_fallback,
            )
        self.signature = Signature(
            inputs=tuple(tensor_spec(node) for node in session.get_inputs()),
            outputs=tuple(tensor_spec(node) for node in session.get_outputs()),
        )
        self._output_names = [spec.name for spec in self.signature.outputs]
        self.properties["device"] = device
        log.info("onnx model runs on %s (providers %s)", device, session.get_providers())

    async def predict(self, inputs: Batch) -> Batch:
        results = await self.run_blocking(self._session.run, self._output_names, inputs)
        return dict(zip(self._output_names, results, strict=True))
