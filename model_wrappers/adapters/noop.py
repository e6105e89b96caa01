"""``noop``: answers every batch with its first input, for benchmarks.

It measures what the container itself costs -- decoding, validation, metrics,
encoding -- with no model in the way, so it predicts on the event loop instead
of hopping to a worker thread.
"""

from __future__ import annotations

from clipper.model_wrappers.base import Batch, Model


class NoopModel(Model):
    """Echoes the first input tensor as ``--output-name``."""

    platform = "clipper_noop"
    warm_up = False

    async def load(self) -> None:
        self.properties["device"] = "cpu"

    async def predict(self, inputs: Batch) -> Batch:
        return {self.settings.output_name: next(iter(inputs.values()))}
