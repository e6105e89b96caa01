"""An MLServer custom runtime over ``predictors.make``: MLServer's adaptive
batching (``max_batch_size``/``max_batch_time`` in model-settings.json) merges
requests before ``predict`` and splits the answer after, as documented."""

from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from predictors import make


class EvalModel(MLModel):
    async def load(self) -> bool:
        extra = self.settings.parameters.extra or {}
        self._predict = make(extra["kind"], self.settings.parameters.uri or "")
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = NumpyCodec.decode_input(payload.inputs[0])
        output = NumpyCodec.encode_output("output", self._predict(rows))
        return InferenceResponse(model_name=self.name, outputs=[output])
