"""One model container as the frontend sees it: a gRPC channel, health, metadata.

A replica is *up* when its ``grpc.health.v1`` check says SERVING and its
``ModelMetadata`` has been read (the frontend needs the container's input name
and datatype to call it). A call that fails because the replica is gone
(connection refused, UNAVAILABLE) marks it down at once, so no further batch is
sent there; the periodic health check brings it back when it answers SERVING
again. The channel reconnects with a short backoff (100 ms to 2 s) instead of
gRPC's default of up to two minutes, so a restarted container is found quickly.

Every call carries the batch's deadline as its gRPC timeout, so a container
never works on a batch whose callers have all given up.

The health watcher is a supervised task (``clipper.common.tasks``): if it ever
dies, the traceback is logged, the crash counted, and it restarts; a replica
whose watcher silently stopped would otherwise never come back up once marked
down.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clipper.common.errors import ClipperError, InvalidInput, ModelError, error_from_grpc
from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import (
    add_raw_inputs,
    datatype_of,
    decode_response,
    dtype_of,
    widened,
)
from clipper.common.tasks import Supervised, TaskRegistry, supervise
from clipper.frontend.records import pack, unpack

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]


class Replica:
    """A model container serving ``model`` at ``version`` on ``address``."""

    def __init__(
        self,
        model: str,
        version: str,
        address: str,
        health_interval_s: float = 1.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        tasks: TaskRegistry | None = None,
    ) -> None:
        self.model = model
        self.version = version
        self.address = address
        self.health_interval_s = health_interval_s
        self.channel = grpc.aio.insecure_channel(
            address, options=channel_options(max_message_bytes)
        )
        self._stub = pb_grpc.GRPCInferenceServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self.metadata: pb.ModelMetadataResponse | None = None
        self.up = False
        self.checked = False
        """Whether a health check has completed: until then the replica is starting."""
        self._up_waiters: list[asyncio.Future[None]] = []
        self._input_name = "input"
        self._input_dtype: np.dtype | None = None
        self._tasks = tasks
        self._task: Supervised | None = None

    def __repr__(self) -> str:
        return f"Replica({self.model}@{self.version} {self.address}, up={self.up})"

    def start(self) -> None:
        self._task = supervise("replica_health", self._watch_health, registry=self._tasks)

    async def close(self) -> None:
        if self._task is not None:
            await self._task.stop()
        self._set_up(False)
        await self.channel.close()

    async def infer(self, rows: np.ndarray, seconds_left: float) -> np.ndarray:
        """The model's outputs for ``rows``, one output row per input row: an array
        when it has one output, records (``clipper.frontend.records``) when several.
        Records in are sent as one input per field."""
        request = pb.ModelInferRequest(model_name=self.model, model_version=self.version)
        if rows.dtype.names is not None:
            add_raw_inputs(request, unpack(rows))
        else:
            add_raw_inputs(request, {self._input_name: self._as_input(rows)})
        try:
            response = await self._stub.ModelInfer(request, timeout=max(seconds_left, 0.001))
        except grpc.aio.AioRpcError as exc:
            raise error_from_grpc(exc.code(), exc.details()) from None
        outputs = decode_response(response)
        if not outputs:
            raise ModelError(f"{self.model}@{self.version} answered without an output")
        for output in outputs.values():
            if len(output.shape) == 0 or output.shape[0] != len(rows):
                raise ModelError(
                    f"{self.model}@{self.version} answered {list(output.shape)} "
                    f"for a batch of {len(rows)} rows"
                )
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return pack(outputs, "output")

    def _as_input(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` in the datatype the container declared: widened where that is
        lossless (``widened``), narrowed only where every value survives the round
        trip (FP64 pixels 0..16 into FP32), else refused with ``InvalidInput``: a
        silent ``astype`` would have the model answer for numbers nobody sent. An
        app that declares a wider input than its model's gets this error for exactly
        the rows the model cannot take as they are."""
        dtype = self._input_dtype
        if dtype is None or rows.dtype == dtype:
            return rows
        target = datatype_of(dtype)
        converted = widened(rows, target)
        if converted is not None:
            return converted
        if rows.dtype.kind in "iuf" and dtype.kind in "iuf":
            with np.errstate(all="ignore"):
                narrowed = rows.astype(dtype)
                if np.array_equal(narrowed.astype(rows.dtype), rows, equal_nan=True):
                    return narrowed
        raise InvalidInput(
            f"model {self.model}@{self.version} takes {target}; the input is "
            f"{datatype_of(rows.dtype)} with values that {target} cannot hold exactly, and "
            f"converting them would change what the model is asked (declare the app's input "
            f"as {target}, or send values that {target} holds)"
        )

    def mark_down(self, reason: str) -> None:
        if self.up:
            log.warning(
                "replica %s of %s@%s is down: %s", self.address, self.model, self.version, reason
            )
        self._set_up(False)

    def wait_up(self) -> asyncio.Future[None]:
        """A future resolved when the replica is (next) marked up."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.up:
            waiter.set_result(None)
        else:
            self._up_waiters.append(waiter)
        return waiter

    async def check(self) -> bool | None:
        """One health check: True if SERVING (metadata read the first time), False if
        the replica says it is not serving, None if it did not answer."""
        try:
            reply = await self._health.Check(
                health_pb2.HealthCheckRequest(service=""),
                timeout=max(1.0, self.health_interval_s),
            )
            if reply.status != SERVING:
                return False
            if self.metadata is None:
                self._learn(await self._read_metadata())
            return True
        except (grpc.aio.AioRpcError, ClipperError) as exc:
            detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else exc.message
            log.debug("health check of %s failed: %s", self.address, detail)
            return None

    async def _watch_health(self) -> None:
        """Up when SERVING; down at once when it says NOT_SERVING (draining), or after
        two checks in a row without an answer (one slow answer on a busy machine is
        not a dead replica; a dead one also fails its calls, which mark it down)."""
        silent = 0
        while True:
            serving = await self.check()
            self.checked = True
            silent = silent + 1 if serving is None else 0
            if serving and not self.up:
                log.info("replica %s of %s@%s is up", self.address, self.model, self.version)
                self._set_up(True)
            elif self.up and (serving is False or silent >= 2):
                self.mark_down("not serving" if serving is False else "no answer to health checks")
            await asyncio.sleep(self.health_interval_s)

    async def _read_metadata(self) -> pb.ModelMetadataResponse:
        request = pb.ModelMetadataRequest(name=self.model, version=self.version)
        try:
            return await self._stub.ModelMetadata(request, timeout=5.0)
        except grpc.aio.AioRpcError as exc:
            raise error_from_grpc(exc.code(), exc.details()) from None

    def _learn(self, metadata: pb.ModelMetadataResponse) -> None:
        self.metadata = metadata
        if metadata.inputs:
            spec = metadata.inputs[0]
            self._input_name = spec.name
            self._input_dtype = dtype_of(spec.datatype, spec.name)
            if spec.datatype == "BYTES":
                self._input_dtype = None  # strings and bytes go as they are

    def _set_up(self, up: bool) -> None:
        self.up = up
        if up:
            waiters, self._up_waiters = self._up_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
