"""The frontend's end of the link to its native gRPC front (``front/``, Go).

The front terminates HTTP/2 and gRPC and relays every OIP call's raw message
here as a frame on one Unix socket; this module decodes it, answers it through
the very ``InferenceServicer`` that serves ``grpc.aio`` (so validation, errors,
their messages and metrics are the same on both servers), and writes the answer
back as a frame. Why: a call then costs Python one protobuf decode, one encode
and a share of one read and one write, instead of grpcio's per-call machinery
(``front/main.go`` says how much that is).

Frames are coalesced both ways: every answer that is ready by the end of an
event-loop iteration goes out in one ``write``, and the front does the same, so
under load one system call carries many calls. The frame layout is documented
once, in ``front/backend.go``.

Calls the front answers itself with an error (past its bound on calls at once, a
method outside the service, no process linked) arrive as counts, added to
``clipper_frontend_errors_total`` as the servicer's own errors are.

Each call and each stream request is a task of its own, as under grpc.aio; the
front sends a cancel when its caller goes away, which cancels the task. A
request that is not a valid message is answered INVALID_ARGUMENT (on a stream:
that request's error answer), and the link goes on.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, NoReturn, cast

import grpc
from google.protobuf.message import DecodeError

from clipper.common.errors import InvalidInput
from clipper.common.protocol import pb
from clipper.frontend.grpc.servicer import API, STREAM_API, InferenceServicer

log = logging.getLogger(__name__)

CALL, STREAM_REQUEST, CANCEL, STREAM_OPENED, STREAM_CLOSED, REFUSED = 1, 2, 3, 4, 5, 6
ANSWER = 1
_HEAD = struct.Struct("<IBQ")  # size, kind, id
_SECONDS = struct.Struct("<d")
_U16 = struct.Struct("<H")
_ANSWER = struct.Struct("<IBQBII")  # size, kind, id, code, retry-after, message length
MAX_FRAME = 1 << 31
SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
REFUSED_APIS = (API, STREAM_API)
"""A refused frame's api byte -> the ``api`` label of ``clipper_frontend_errors_total``."""
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


class Aborted(Exception):
    """``context.abort``: the call ends with this status."""

    def __init__(self, code: grpc.StatusCode, details: str, retry_after: int) -> None:
        super().__init__(details)
        self.code, self.details, self.retry_after = code, details, retry_after


class CallContext:
    """What ``InferenceServicer`` asks of a call's context, for a relayed call."""

    __slots__ = ("_deadline", "_metadata")

    def __init__(self, metadata: tuple[tuple[str, str], ...], deadline: float | None) -> None:
        self._metadata = metadata
        self._deadline = deadline

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: tuple[tuple[str, str], ...] = (),
    ) -> NoReturn:
        retry_after = next((int(v) for k, v in trailing_metadata if k == "retry-after"), 0)
        raise Aborted(code, details, retry_after)


Handler = Callable[[Any, Any], Awaitable[Any]]


def unary_methods(servicer: InferenceServicer) -> dict[str, tuple[Any, Handler]]:
    """Method name -> (request class, handler), for every unary method of the service."""
    methods = {}
    for method in SERVICE.methods:
        if method.client_streaming or method.server_streaming:
            continue
        request_class = getattr(pb, method.input_type.name)
        methods[method.name] = (request_class, getattr(servicer, method.name))
    return methods


class Link(asyncio.Protocol):
    """One front's connection: frames in, calls run, answers out."""

    def __init__(self, servicer: InferenceServicer, on_lost: Callable[[Link], None]) -> None:
        self._servicer = servicer
        self._methods = unary_methods(servicer)
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.WriteTransport | None = None
        self._in = bytearray()
        self._out = bytearray()
        self._flushing = False
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._streams: set[int] = set()
        self.closed = asyncio.Event()

    # --- the transport's side ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.WriteTransport, transport)  # uvloop's: not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._in
        buffer += data
        view = memoryview(buffer)
        offset, end = 0, len(buffer)
        try:
            while end - offset >= 4:
                size = int.from_bytes(view[offset : offset + 4], "little")
                if size < 9 or size > MAX_FRAME:
                    raise ValueError(f"a frame from the gRPC front of {size} bytes")
                if end - offset - 4 < size:
                    break
                self._frame(view, offset, offset + 4 + size)
                offset += 4 + size
        except ValueError as exc:  # the front and the frontend disagree: a bug, end the link
            log.error("gRPC front link: %s; closing it", exc)
            view.release()
            assert self._transport is not None
            self._transport.close()
            return
        view.release()
        del buffer[:offset]

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._servicer.streams.relayed -= len(self._streams)
        self._streams.clear()
        self.closed.set()
        self._on_lost(self)

    # --- frames ---------------------------------------------------------------

    def _frame(self, view: memoryview, start: int, end: int) -> None:
        _, kind, ident = _HEAD.unpack_from(view, start)
        position = start + _HEAD.size
        if kind in (CALL, STREAM_REQUEST):
            length = view[position]
            method = str(view[position + 1 : position + 1 + length], "ascii")
            position += 1 + length
            (seconds,) = _SECONDS.unpack_from(view, position)
            request_id, position = _string(view, position + 8)
            query_context, position = _string(view, position)
            message = bytes(view[position:end])
            metadata: tuple[tuple[str, str], ...] = ()
            if request_id:
                metadata += (("x-request-id", request_id),)
            if query_context:
                metadata += (("x-clipper-context", query_context),)
            deadline = None if seconds < 0 else self._loop.time() + seconds
            context = CallContext(metadata, deadline)
            if kind == CALL:
                run = self._call(ident, method, message, context)
            else:
                run = self._stream_request(ident, message, context)
            task = self._loop.create_task(run)
            self._tasks[ident] = task
            task.add_done_callback(partial(self._done, ident))
        elif kind == CANCEL:
            running = self._tasks.get(ident)
            if running is not None:
                running.cancel()
        elif kind == STREAM_OPENED:
            self._streams.add(ident)
            self._servicer.streams.relayed += 1
        elif kind == STREAM_CLOSED:
            if ident in self._streams:
                self._streams.discard(ident)
                self._servicer.streams.relayed -= 1
        elif kind == REFUSED:  # calls the front answered itself; ident is their count
            if end - position < 2:
                raise ValueError("a short refused frame")
            api, code = view[position], view[position + 1]
            if api >= len(REFUSED_APIS):
                raise ValueError(f"a refused frame for an unknown API {api}")
            self._servicer.metrics.error(REFUSED_APIS[api], CODE_NAMES.get(code, str(code)), ident)
        else:
            raise ValueError(f"a frame of unknown kind {kind}")

    def _done(self, ident: int, _: asyncio.Task[None]) -> None:
        self._tasks.pop(ident, None)

    async def _call(self, ident: int, method: str, message: bytes, context: CallContext) -> None:
        entry = self._methods.get(method)
        if entry is None:
            self._answer(
                ident, grpc.StatusCode.UNIMPLEMENTED, f"method {method} is not implemented"
            )
            return
        request_class, handler = entry
        try:
            request = request_class.FromString(message)
        except DecodeError as exc:
            self._answer(ident, grpc.StatusCode.INVALID_ARGUMENT, _not_valid(request_class, exc))
            return
        try:
            response = await handler(request, context)
        except Aborted as aborted:
            self._answer(ident, aborted.code, aborted.details, retry_after=aborted.retry_after)
        except Exception as exc:  # a bug: this call fails, the link goes on
            log.exception("gRPC %s failed", method)
            self._answer(ident, grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        else:
            self._answer(ident, grpc.StatusCode.OK, "", response.SerializeToString())

    async def _stream_request(self, ident: int, message: bytes, context: CallContext) -> None:
        streams = self._servicer.streams
        streams.inflight += 1
        try:
            try:
                request = pb.ModelInferRequest.FromString(message)
            except DecodeError as exc:
                answer = await self._servicer.stream_error(
                    context, pb.ModelInferRequest(), _invalid(pb.ModelInferRequest, exc)
                )
            else:
                answer = await self._servicer.answer_stream_request(
                    context, dict(context.invocation_metadata()), request
                )
            self._answer(ident, grpc.StatusCode.OK, "", answer.SerializeToString())
        finally:
            streams.inflight -= 1

    def _answer(
        self,
        ident: int,
        code: grpc.StatusCode,
        message: str,
        body: bytes = b"",
        retry_after: int = 0,
    ) -> None:
        text = message.encode()
        size = _ANSWER.size - 4 + len(text) + len(body)
        self._out += _ANSWER.pack(size, ANSWER, ident, code.value[0], retry_after, len(text))
        self._out += text
        self._out += body
        if not self._flushing:
            self._flushing = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        out, self._out = self._out, bytearray()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(out)


def _string(view: memoryview, position: int) -> tuple[str, int]:
    (length,) = _U16.unpack_from(view, position)
    start = position + 2
    return str(view[start : start + length], "utf-8", "replace"), start + length


def _not_valid(request_class: Any, exc: Exception) -> str:
    return f"the request is not a valid {request_class.DESCRIPTOR.full_name} message: {exc}"


def _invalid(request_class: Any, exc: Exception) -> InvalidInput:
    return InvalidInput(_not_valid(request_class, exc))
