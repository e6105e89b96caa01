"""The Open Inference Protocol's ``inference.GRPCInferenceService`` over a ``DataPlane``.

Thin by design: decode the request with ``clipper.common.protocol.tensors``
(raw contents zero-copy, typed contents too), hand the arrays to the data
plane, and answer with raw output contents. Errors are mapped in exactly one
place -- ``ClipperError.grpc_code`` and its message become the call's status --
and counted by code. A call is admitted (``admission``) before its tensors are
decoded, so an overloaded server refuses work before doing any.

``calls`` counts ModelInfer calls from the moment one starts until gRPC has
finished sending its answer (``add_done_callback``), so the drain on SIGTERM
knows precisely when every inference has been delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from clipper import __version__
from clipper.common import logs
from clipper.common.errors import ClipperError, ModelError
from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_outputs, decode_request
from clipper.model_wrappers.dataplane import DataPlane
from clipper.model_wrappers.signature import TensorSpec

log = logging.getLogger(__name__)

SERVER_NAME = "clipper-model"
T = TypeVar("T")


class InflightCalls:
    """How many calls are being served; ``idle`` is set whenever none is."""

    def __init__(self) -> None:
        self.count = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def started(self) -> Callable[[object], None]:
        self.count += 1
        self.idle.clear()
        return self._finished

    def _finished(self, _: object = None) -> None:
        self.count -= 1
        if self.count == 0:
            self.idle.set()


def fail(context: grpc.aio.ServicerContext, error: ClipperError, empty: T) -> T:
    """End the call with ``error``'s status (the empty message is never sent).

    Setting the status is the one place errors map to gRPC, and it costs no
    exception, unlike ``context.abort``.
    """
    context.set_code(error.grpc_code)
    context.set_details(error.message)
    return empty


def tensor_metadata(spec: TensorSpec) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=spec.name, datatype=spec.datatype, shape=spec.shape
    )


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """OIP V2 gRPC handlers for one model version."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.metrics = plane.metrics
        self.calls = InflightCalls()

    async def ServerLive(self, request: pb.ServerLiveRequest, context: object) -> object:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: object) -> object:
        return pb.ServerReadyResponse(ready=self.plane.ready)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: object) -> object:
        ready = self.plane.ready and self.plane.serves(request.name, request.version)
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: object) -> object:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=__version__, extensions=[])

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> object:
        try:
            self.plane.check_model(request.name, request.version)
        except ClipperError as exc:
            return fail(context, exc, pb.ModelMetadataResponse())
        model = self.plane.model
        return pb.ModelMetadataResponse(
            name=self.plane.name,
            versions=[self.plane.version],
            platform=model.platform,
            inputs=[tensor_metadata(spec) for spec in model.signature.inputs],
            outputs=[tensor_metadata(spec) for spec in model.signature.outputs],
            properties=model.properties,
        )

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> object:
        context.add_done_callback(self.calls.started())
        self.metrics.inflight.inc()
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        logs.request_id.set(request.id or "-")
        try:
            return await self._infer(request)
        except ClipperError as exc:
            code = exc.grpc_code
            return fail(context, exc, pb.ModelInferResponse())
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:  # a bug of ours: say so, keep serving
            log.exception("ModelInfer failed unexpectedly")
            error = ClipperError(f"internal error: {type(exc).__name__}: {exc}")
            code = error.grpc_code
            return fail(context, error, pb.ModelInferResponse())
        finally:
            self.metrics.inflight.dec()
            self.metrics.request_done(code, time.perf_counter() - start)

    async def ModelStreamInfer(
        self, request_iterator: object, context: grpc.aio.ServicerContext
    ) -> None:
        """Not served here: the frontend batches and calls ModelInfer. The shared proto
        declares it (Triton's streaming extension, for the frontend's clients); without
        this, the generated base class would answer with an ERROR traceback in the log."""
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "model containers serve ModelInfer; ModelStreamInfer is the frontend's",
        )

    async def _infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        self.plane.check_model(request.model_name, request.model_version)
        with self.plane.admission.admit():  # before decoding: shed load before work
            inputs = decode_request(request)
            outputs = await self.plane.infer(inputs, [out.name for out in request.outputs])
        response = pb.ModelInferResponse(
            model_name=self.plane.name, model_version=self.plane.version, id=request.id
        )
        try:
            add_raw_outputs(response, outputs)
        except ClipperError as exc:  # e.g. an object array the protocol cannot carry
            raise ModelError(f"the model's output cannot be sent: {exc.message}") from None
        return response
