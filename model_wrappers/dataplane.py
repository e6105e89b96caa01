"""The model container's request path, independent of any transport.

The gRPC servicer decodes a request and hands the arrays here; this module
holds the model to its signature, runs it, times it and turns its failures into
the project's errors:

* a request the signature rejects is ``InvalidInput`` (INVALID_ARGUMENT);
* anything the model raises is ``ModelError`` (INTERNAL) carrying the
  exception's own message, logged once with its traceback;
* a model that answers the wrong number of rows is a ``ModelError`` too;
* a call past ``--max-queued-batches`` is ``Overloaded`` (RESOURCE_EXHAUSTED), see
  ``admission``.

None of these leaves any state behind, so the next request is served as if the
failed one never came.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Sequence

from clipper.common.errors import ClipperError, InvalidInput, ModelError, NotFound, Unavailable
from clipper.model_wrappers import registry
from clipper.model_wrappers.admission import Admission
from clipper.model_wrappers.base import Batch, Model
from clipper.model_wrappers.metrics import ModelMetrics

log = logging.getLogger(__name__)


class State(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"


class DataPlane:
    """Serves one model version: readiness, name checks and inference."""

    def __init__(self, model: Model, metrics: ModelMetrics, max_queued_batches: int = 16) -> None:
        self.model = model
        self.metrics = metrics
        self.state = State.LOADING
        self.name = model.settings.name
        self.version = model.settings.version
        workers = model.settings.max_concurrency
        self.admission = Admission(self.name, workers, max_queued_batches, metrics)

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    async def load(self) -> None:
        """Load and warm up the model; ``ModelLoadError`` if it cannot be."""
        await registry.load(self.model)
        self.metrics.info.info(
            {"name": self.name, "version": self.version, **self.model.properties}
        )
        self.state = State.READY

    def drain(self) -> None:
        """Report not ready; requests are still answered until the transport stops."""
        self.state = State.DRAINING

    def serves(self, name: str, version: str = "") -> bool:
        return name == self.name and version in ("", self.version)

    def check_model(self, name: str, version: str = "") -> None:
        if name != self.name:
            raise NotFound(f"unknown model '{name}'; this server serves '{self.name}'")
        if version not in ("", self.version):
            raise NotFound(
                f"model '{name}' has no version '{version}'; this server serves "
                f"version '{self.version}'"
            )

    async def infer(self, inputs: Batch, requested: Sequence[str] = ()) -> Batch:
        """Validate, predict and check one batch; ``requested`` picks outputs."""
        if self.state is State.LOADING:
            raise Unavailable(f"model '{self.name}' is still loading")
        signature = self.model.signature
        inputs, rows = signature.conform(inputs)
        if requested:
            self._check_requested(requested)
        self.metrics.batch_size.observe(rows)
        outputs = await self._predict(inputs)
        signature.check_outputs(outputs, rows)
        if requested:
            outputs = self._select(outputs, requested)
        return outputs

    async def _predict(self, inputs: Batch) -> Batch:
        start = time.perf_counter()
        try:
            return await self.model.predict(inputs)
        except ClipperError:
            raise
        except Exception as exc:
            log.error("model '%s' raised while predicting", self.name, exc_info=True)
            raise ModelError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.metrics.predict_seconds.observe(time.perf_counter() - start)

    def _check_requested(self, requested: Sequence[str]) -> None:
        known = {spec.name for spec in self.model.signature.outputs}
        unknown = [name for name in requested if known and name not in known]
        if unknown:
            raise InvalidInput(
                f"unknown output {', '.join(repr(n) for n in unknown)}; "
                f"this model has {', '.join(repr(n) for n in sorted(known))}"
            )

    @staticmethod
    def _select(outputs: Batch, requested: Sequence[str]) -> Batch:
        missing = [name for name in requested if name not in outputs]
        if missing:
            raise InvalidInput(
                f"unknown output {', '.join(repr(n) for n in missing)}; "
                f"this model returned {', '.join(repr(n) for n in outputs)}"
            )
        return {name: outputs[name] for name in requested}
