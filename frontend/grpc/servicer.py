"""``inference.GRPCInferenceService`` over the data plane.

Tensors come raw (``raw_input_contents``, decoded zero-copy) or typed; the
answer is always raw. The first dimension of the input is the batch: each row
is one query. A request may carry several inputs; the answer carries every
output, or the ones named in the request's ``outputs``. Errors map once: a
``ClipperError``'s ``grpc_code`` and message become the call's status
(``retry-after`` trailing metadata for RESOURCE_EXHAUSTED from a full queue),
counted by code.

Per call, optionally: ``x-clipper-context`` metadata (or a ``context`` request
parameter) keys the selection state; ``x-request-id`` metadata (else the
request's ``id``) is the request id in logs; the call's gRPC deadline, if
sooner than the app's latency objective, is the queries' deadline. The
objective counts from the call's start (the handler's entry, before the tensors
are decoded). Defaults are
signalled in the response parameters, as over REST (``clipper.frontend.oip``).

ModelStreamInfer (Triton's extension of this service, what tritonclient's
``start_stream`` / ``async_stream_infer`` speak) answers each request on a
stream as ModelInfer would, concurrently and bounded (``streams.py``). A
request's error does not end the stream: it is that request's answer, with the
same message as ModelInfer's status (prefixed ``[request id: ID]``, as Triton
does), and, in ``infer_response``, the request's ``id`` and model name and the
parameters ``code`` (the gRPC status code ModelInfer would have ended with) and,
for RESOURCE_EXHAUSTED, ``retry_after`` (seconds). Admission control, paced
refusals and deadlines are ModelInfer's, per request; the objective counts from
the request's read off the stream, the stream's gRPC deadline caps it, and the
request id in logs is the request's ``id`` (else the stream's ``x-request-id``).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any, NoReturn, Protocol

import grpc
import numpy as np

from clipper import __version__
from clipper.common import logs
from clipper.common.errors import ClipperError, InvalidInput, Overloaded
from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_outputs, decode_request
from clipper.frontend.dataplane import DataPlane
from clipper.frontend.grpc.streams import OpenStreams, RequestStream
from clipper.frontend.metrics import Metrics
from clipper.frontend.oip import (
    declared_inputs,
    declared_row,
    output_tensors,
    response_parameters,
)
from clipper.frontend.records import pack
from clipper.frontend.routing.apps import AppRuntime
from clipper.frontend.signature import check_tensor

log = logging.getLogger(__name__)


class CallContext(Protocol):
    """What the servicer asks of a call: ``grpc.aio``'s context, or the native front's
    (``bridge.py``)."""

    def invocation_metadata(self) -> Any: ...

    def time_remaining(self) -> float | None: ...

    async def abort(
        self, code: grpc.StatusCode, details: str = ..., trailing_metadata: Any = ...
    ) -> NoReturn: ...


SERVER_NAME = "clipper-frontend"
API = "oip_grpc"
STREAM_API = "oip_grpc_stream"


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, plane: DataPlane, metrics: Metrics, stream_max_inflight: int = 64) -> None:
        self.plane = plane
        self.metrics = metrics
        self.stream_max_inflight = stream_max_inflight
        self.streams = OpenStreams()
        metrics.watch_streams(
            lambda: len(self.streams.streams) + self.streams.relayed,
            lambda: self.streams.inflight,
            stream_max_inflight,
        )

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> Any:
        return pb.ServerLiveResponse(live=self.plane.live)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.plane.ready)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Any) -> Any:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=__version__, extensions=[])

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> Any:
        try:
            return pb.ModelReadyResponse(ready=self.plane.app(request.name).ready)
        except ClipperError as exc:
            await self._abort(context, exc)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> Any:
        try:
            return pb.ModelMetadataResponse(**self.plane.metadata(request.name))
        except ClipperError as exc:
            await self._abort(context, exc)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: CallContext) -> Any:
        loop = asyncio.get_running_loop()
        start = loop.time()
        metadata = dict(context.invocation_metadata() or ())
        logs.request_id.set(str(metadata.get("x-request-id") or request.id or "-"))
        response = pb.ModelInferResponse()
        try:
            app = await self._infer(request, context, metadata, start, response)
        except ClipperError as exc:
            await self._abort(context, exc)
        app.metrics.latency(API).observe(loop.time() - start)
        return response

    async def ModelStreamInfer(
        self, request_iterator: Any, context: grpc.aio.ServicerContext
    ) -> None:
        metadata = dict(context.invocation_metadata() or ())
        answer = partial(self.answer_stream_request, context, metadata)
        await RequestStream(context, answer, self.stream_max_inflight, self.streams).serve()

    async def answer_stream_request(
        self,
        context: CallContext,
        metadata: dict[str, Any],
        request: pb.ModelInferRequest,
    ) -> pb.ModelStreamInferResponse:
        """One request of a stream, answered as ModelInfer would; an error is its answer."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        logs.request_id.set(str(request.id or metadata.get("x-request-id") or "-"))
        answer = pb.ModelStreamInferResponse()
        try:
            app = await self._infer(request, context, metadata, start, answer.infer_response)
        except ClipperError as exc:
            return await self.stream_error(context, request, exc)
        except Exception as exc:  # a bug: this request fails, the stream goes on
            log.exception("stream request %r failed", request.id)
            error = ClipperError(f"{type(exc).__name__}: {exc}")
            return await self.stream_error(context, request, error)
        app.metrics.latency(STREAM_API).observe(loop.time() - start)
        return answer

    async def _infer(
        self,
        request: pb.ModelInferRequest,
        context: CallContext,
        metadata: dict[str, Any],
        arrived: float,
        response: pb.ModelInferResponse,
    ) -> AppRuntime:
        """Fill ``response`` with the answer to ``request``; the app that answered."""
        name = request.model_name
        self.plane.door(name, arrived)
        app = self.plane.app(name)
        rows = _rows(request, app)
        requested = [output.name for output in request.outputs]
        remaining = context.time_remaining()
        deadline = None if remaining is None else asyncio.get_running_loop().time() + remaining
        query_context = _context(request, metadata)
        answers = await self.plane.predict(name, rows, query_context, deadline, arrived)
        response.model_name = name
        response.id = request.id
        declared = declared_row(app.output_metadata())
        add_raw_outputs(
            response, output_tensors(answers, declared, app.output_name(), requested or None)
        )
        for key, value in response_parameters(answers).items():
            _set_parameter(response.parameters[key], value)
        return app

    async def _abort(self, context: CallContext, exc: ClipperError) -> NoReturn:
        self.metrics.error(API, exc.grpc_code.name)
        trailing: tuple[tuple[str, str], ...] = ()
        if isinstance(exc, Overloaded):
            trailing = (("retry-after", str(_retry_after(exc))),)
            await _hold(context, exc)
        await context.abort(exc.grpc_code, exc.message, trailing_metadata=trailing)
        raise AssertionError("context.abort returns by raising")

    async def stream_error(
        self, context: CallContext, request: pb.ModelInferRequest, exc: ClipperError
    ) -> pb.ModelStreamInferResponse:
        """``exc`` as one stream answer: Triton's ``error_message``, and the request's id,
        model name and status code in ``infer_response`` (see the module docstring)."""
        code = exc.grpc_code.name
        self.metrics.error(STREAM_API, code)
        prefix = f"[request id: {request.id}] " if request.id else ""
        answer = pb.ModelStreamInferResponse(error_message=prefix + exc.message)
        response = answer.infer_response
        response.model_name, response.id = request.model_name, request.id
        response.parameters["code"].string_param = code
        if isinstance(exc, Overloaded):
            response.parameters["retry_after"].int64_param = _retry_after(exc)
            await _hold(context, exc)  # holds the stream's slot too: the client slows down
        return answer


def _retry_after(refusal: Overloaded) -> int:
    return max(1, round(refusal.retry_after))


async def _hold(context: CallContext, refusal: Overloaded) -> None:
    """Pace a refusal (``FrontendSettings.pace_refusals``), within the caller's deadline."""
    remaining = context.time_remaining()
    hold = refusal.hold_s if remaining is None else min(refusal.hold_s, remaining / 2)
    if hold > 0:
        await asyncio.sleep(hold)


def _rows(request: pb.ModelInferRequest, app: AppRuntime) -> np.ndarray:
    """One input as an array; several as records, checked against the declared inputs."""
    if len(request.inputs) != 1:
        return _records(request, app)
    signature = app.signature()
    inputs = decode_request(request)
    name, array = next(iter(inputs.items()))
    if signature is not None and name != signature.name:
        raise InvalidInput(f"unknown input '{name}'; the app's input is '{signature.name}'")
    return check_tensor(array, signature, name)


def _records(request: pb.ModelInferRequest, app: AppRuntime) -> np.ndarray:
    if not request.inputs:
        raise InvalidInput("the inference request has no inputs")
    declared = declared_inputs(app, [tensor.name for tensor in request.inputs])
    inputs = decode_request(request)
    return pack({name: check_tensor(a, declared.get(name), name) for name, a in inputs.items()})


def _context(request: pb.ModelInferRequest, metadata: dict[str, Any]) -> str:
    value = metadata.get("x-clipper-context")
    if value is None and "context" in request.parameters:
        value = request.parameters["context"].string_param
    return str(value or "")


def _set_parameter(parameter: pb.InferParameter, value: object) -> None:
    if isinstance(value, bool):
        parameter.bool_param = value
    elif isinstance(value, int):
        parameter.int64_param = value
    else:
        parameter.string_param = str(value)
