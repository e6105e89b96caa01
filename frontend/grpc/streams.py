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
from dataclasses import dataclass

import grpc

from clipper.common.protocol import pb

Answer = Callable[[pb.ModelInferRequest], Awaitable[pb.ModelStreamInferResponse]]
"""Answers one request; never raises (an error is the response's ``error_message``)."""


@dataclass(slots=True)
class StreamCounts:
    """Open streams and their requests in flight, over all streams (for /metrics)."""

    streams: int = 0
    inflight: int = 0


class RequestStream:
    """Serves one ModelStreamInfer call through ``context.read`` / ``context.write``."""

    def __init__(
        self,
        context: grpc.aio.ServicerContext,
        answer: Answer,
        max_inflight: int,
        counts: StreamCounts,
    ) -> None:
        self._context = context
        self._answer = answer
        self._slots = asyncio.Semaphore(max_inflight)
        self._answers: asyncio.Queue[pb.ModelStreamInferResponse | None] = asyncio.Queue()
        """Answers ready to write (at most ``max_inflight``); None: the client closed
        its side."""
        self._pending = 0
        self._counts = counts

    async def serve(self) -> None:
        """Until the client has closed its side and every answer is written."""
        self._counts.streams += 1
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._read(group))
                await self._write()
        finally:
            self._counts.streams -= 1
            self._counts.inflight -= self._pending

    async def _read(self, group: asyncio.TaskGroup) -> None:
        while True:
            await self._slots.acquire()  # back-pressure: no slot, no read
            request = await self._context.read()
            if request is grpc.aio.EOF:
                self._answers.put_nowait(None)
                return
            self._pending += 1
            self._counts.inflight += 1
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
            self._counts.inflight -= 1
            self._slots.release()
