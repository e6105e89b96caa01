"""The one interface every framework adapter implements.

A ``Model`` is async: ``await load()`` once, then ``await predict(batch)`` for
every batch, where a batch is ``{input name: array}`` and the answer is
``{output name: array}`` with as many rows. The server awaits ``predict`` on its
event loop, so an adapter whose framework blocks (all of them, in practice) runs
the work through ``run_blocking``: a pool of ``max_concurrency`` worker threads
owned by the model. That keeps health checks, metadata and request decoding
answering while a batch runs -- torch, ONNX Runtime and numpy release the GIL in
their kernels -- and makes "how many batches run at once" one explicit setting
instead of an accident of the transport's thread count.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, ParamSpec, TypeVar

import numpy as np

from clipper.common.errors import ConfigError
from clipper.model_wrappers.settings import ModelSettings
from clipper.model_wrappers.signature import Signature, TensorSpec

P = ParamSpec("P")
T = TypeVar("T")

Batch = dict[str, np.ndarray]
WORKER_THREAD_PREFIX = "clipper-model"


class Model(abc.ABC):
    """A loaded model that predicts whole batches."""

    platform: ClassVar[str]
    """What ModelMetadata reports as the platform (Triton's names where they exist)."""

    default_datatype: ClassVar[str | None] = None
    """The datatype of a declared input when --input-datatype is not given."""

    warm_up: ClassVar[bool] = True
    """Predict one all-zeros row after loading, to learn the outputs and pay
    first-call costs before the first request does (off for user functions)."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.signature = Signature(inputs=self._declared_inputs())
        self.properties: dict[str, str] = {"framework": settings.framework}
        self._pool = ThreadPoolExecutor(
            max_workers=settings.max_concurrency,
            thread_name_prefix=WORKER_THREAD_PREFIX,
            initializer=self.init_worker_thread,
        )

    @abc.abstractmethod
    async def load(self) -> None:
        """Load the artifact; may refine ``signature`` and ``properties``."""

    @abc.abstractmethod
    async def predict(self, inputs: Batch) -> Batch:
        """Predict a whole batch; every output has as many rows as the inputs."""

    def init_worker_thread(self) -> None:
        """Runs first in each worker thread: per-thread framework state goes here.

        OpenMP's thread count is per thread, so a limit set on the event loop's
        thread does not reach the workers: left alone, a worker's first parallel
        region would start a team as large as the machine, whose threads then spin.
        """
        return None  # most frameworks keep no per-thread state

    async def close(self) -> None:
        """Release the worker threads (queued batches are cancelled)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def run_blocking(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on one of the model's worker threads, keeping the log context."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def _declared_inputs(self) -> tuple[TensorSpec, ...]:
        settings = self.settings
        if settings.input_shape is None:
            return ()
        datatype = settings.input_datatype or self.default_datatype
        if datatype is None:
            raise ConfigError(
                f"{settings.framework} models need --input-datatype with --input-shape",
                location="input_datatype",
            )
        return (TensorSpec(settings.input_name, datatype, settings.input_shape),)
