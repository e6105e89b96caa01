"""One ModelStreamInfer stream: many requests read, answered concurrently, bounded.

Why a stream at all: in Python, grpc.aio's cost per *call* -- a new call's
set-up, its handler task, its metadata and status frames, a poller wake-up for
each -- is the floor of unary ModelInfer's throughput (a do-nothing servicer
answers ~3,000 calls/s per core). On a stream a request costs one message read
and one message written; that is the lever Triton's clients use for throughput.

Why concurrently: every message read becomes its own task at once, so a stream
never serializes its requests behind one another -- the batcher wants them
together, and a slow request does not hold up the fast ones. Answers go out in
the order they finish; the client matches them by the request's ``id``.

Why bounded: at most ``max_inflight`` requests are read and not yet answered.
The reader takes a slot before it reads the next message and the writer gives
it back once the answer is written, so past the bound the stream is simply not
read: the client's messages wait in HTTP/2 flow control (its send window and
its own buffers), never in an unbounded queue here.

Shutdown: a stream may stay open for good, and grpc.aio's stop would wait the
whole grace period for it and then cut it, answers in flight and all. So when the
server stops, every stream stops reading, writes the answers to what it has read,
and ends UNAVAILABLE: the client learns that the requests it sent after those
were not read and sends them again on a new stream (to a frontend that stays).

Disconnects: grpc.aio cancels the handler when the client cancels or goes away.
Everything the stream started lives in one ``asyncio.TaskGroup``, which then
cancels the reader and every request in flight and waits for them, so nothing
keeps running for a gone client and no task is left with an exception that
nobody retrieved. The tasks are request-scoped, owned and awaited by the stream
(as grpc.aio's own task per unary call is), so they are not long-lived tasks
for ``clipper.common.tasks``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from clipper.common.protocol import pb

Answer = Callable[[pb.ModelInferRequest], Awaitable[pb.ModelStreamInferResponse]]
"""Answers one request; never raises (an error is the response's ``error_message``)."""


CLOSED = (
    "the frontend is shutting down: requests not answered on this stream were not "
    "read; send them again on a new stream"
)


@dataclass(slots=True)
class OpenStreams:
    """The open streams and their requests in flight, over all streams (for /metrics)."""

    streams: set[RequestStream] = field(default_factory=set)
    relayed: int = 0
    """Streams open on the native gRPC front (``bridge.py``), which reads them itself."""
    inflight: int = 0
    closing: bool = False

    def close(self) -> None:
        """The server stops: every stream stops reading, answers what it has read and
        ends UNAVAILABLE; a stream that opens from now on ends so at once."""
        self.closing = True
        for stream in self.streams:
            stream.close()


class RequestStream:
    """Serves one ModelStreamInfer call through ``context.read`` / ``context.write``."""

    def __init__(
        self,
        context: grpc.aio.ServicerContext,
        answer: Answer,
        max_inflight: int,
        open_streams: OpenStreams,
    ) -> None:
        self._context = context
        self._answer = answer
        self._slots = asyncio.Semaphore(max_inflight)
        self._answers: asyncio.Queue[pb.ModelStreamInferResponse | None] = asyncio.Queue()
        """Answers ready to write (at most ``max_inflight``); None: the client closed
        its side."""
        self._pending = 0
        self._open = open_streams
        self._reader: asyncio.Task[Any] | None = None
        self._closed = False

    async def serve(self) -> None:
        """Until the client has closed its side (or the server stops) and every answer
        to what was read is written."""
        self._open.streams.add(self)
        try:
            async with asyncio.TaskGroup() as group:
                self._reader = group.create_task(self._read(group))
                if self._open.closing:
                    self.close()
                await self._write()
        finally:
            self._open.streams.discard(self)
            self._open.inflight -= self._pending
        if self._closed:
            self._context.set_code(grpc.StatusCode.UNAVAILABLE)
            self._context.set_details(CLOSED)

    def close(self) -> None:
        """Read no more; the stream ends once what was read is answered."""
        if self._reader is None or self._reader.done():
            return  # not started, or the client closed its side: it ends by itself
        self._reader.cancel()
        self._closed = True
        self._answers.put_nowait(None)

    async def _read(self, group: asyncio.TaskGroup) -> None:
        while True:
            await self._slots.acquire()  # back-pressure: no slot, no read
            request = await self._context.read()
            if request is grpc.aio.EOF:
                self._answers.put_nowait(None)
                return
            self._pending += 1
            self._open.inflight += 1
            group.create_task(self._run(request))

    async def _run(self, request: pb.ModelInferRequest) -> None:
        self._answers.put_nowait(await self._answer(request))

    async def _write(self) -> None:
        reading = True
        while reading or self._pending:
            answer = await self._answers.get()
            if answer is None:
                reading = False
                continue
            await self._context.write(answer)
            self._pending -= 1
            self._open.inflight -= 1
            self._slots.release()
