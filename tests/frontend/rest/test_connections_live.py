"""Every HTTP client handled: real sockets on 127.0.0.1 against a real frontend.

Half-sent heads and bodies are closed after their timeouts while others are
served; past the connection bound new clients get a quick 503 and are served
again once the others go; a client that leaves mid-upload is INFO, not a 500;
the HTTP parser's errors are JSON; HTTP/1.0 without a length gets 411. Timeouts
are set short and awaited with generous deadlines: no wall-clock assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from clipper.testing.frontend import Serving, metric, route, serving, write_routes
from clipper.testing.processes import refusing_port
from clipper.testing.timeouts import scaled

PATIENCE_S = scaled(30.0)  # generous: only a hang takes this long
HEAD = b"POST /digits/predict HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
READYZ = b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n"
CLOSED = "clipper_frontend_http_connections_closed_total"


@contextlib.asynccontextmanager
async def running(routes: Path, **settings: Any) -> AsyncIterator[Serving]:
    """A frontend serving an app ``digits`` whose one replica refuses connections:
    what is tested here happens while a request is read, before any model is
    called. The app must exist, because an unknown app is answered 404 at the
    door, before its body is read."""
    with refusing_port() as port:
        app = route("digits", {"m": [f"127.0.0.1:{port}"]})
        async with serving(write_routes(routes, app), ready=False, **settings) as fe:
            yield fe


class Client:
    """One raw TCP connection to the frontend's REST port."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, fe: Serving) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", fe.frontend.rest.port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (lower-case names), body."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), PATIENCE_S)
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), PATIENCE_S)
        return int(lines[0].split()[1]), headers, body

    async def closed(self) -> bool:
        """True once the server closed the connection (EOF or reset)."""
        try:
            return await asyncio.wait_for(self.reader.read(65536), PATIENCE_S) == b""
        except ConnectionError:  # reset, or a broken pipe seen first
            return True

    def close(self) -> None:
        self.writer.close()


async def ready(fe: Serving) -> int:
    client = await Client.connect(fe)
    try:
        await client.send(READYZ)
        return (await client.answer())[0]
    finally:
        client.close()


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not await check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.05)


async def test_a_half_sent_head_is_closed_after_the_header_timeout(routes: Path) -> None:
    async with running(routes, header_timeout_s=0.3) as fe:
        slow = await Client.connect(fe)
        await slow.send(HEAD[:30])  # the head stops mid-way
        assert await ready(fe) == 200  # others are served meanwhile
        assert await slow.closed()
        assert metric(fe.metrics(), CLOSED, reason="header_timeout") >= 1
        assert await ready(fe) == 200


async def test_a_head_sent_a_byte_at_a_time_is_closed_too(routes: Path) -> None:
    async with running(routes, header_timeout_s=0.3) as fe:
        slow = await Client.connect(fe)
        for byte in HEAD[:40]:  # each byte comes well within the timeout; the head never does
            try:
                await slow.send(bytes([byte]))
            except ConnectionError:
                break
            await asyncio.sleep(0.05)
        assert await slow.closed()


async def test_a_half_sent_body_gets_408_and_is_closed(routes: Path) -> None:
    async with running(routes, body_timeout_s=0.3) as fe:
        slow = await Client.connect(fe)
        await slow.send(HEAD + b'{"input": [')  # 11 of 100 bytes
        assert await ready(fe) == 200
        status, headers, body = await slow.answer()
        assert await slow.closed()
        text = fe.metrics()
    assert status == 408
    assert headers["content-type"] == "application/json"
    assert "did not arrive within the frontend's body timeout" in orjson.loads(body)["error"]
    assert headers["connection"] == "close"
    assert metric(text, CLOSED, reason="body_timeout") == 1


async def test_past_the_connection_bound_new_clients_get_a_quick_503(routes: Path) -> None:
    async with running(routes, max_connections=3) as fe:
        held = [await Client.connect(fe) for _ in range(3)]
        for client in held:  # keep-alive connections, idle after a request
            await client.send(READYZ)
            assert (await client.answer())[0] == 200
        extra = await Client.connect(fe)
        await extra.send(READYZ)
        status, headers, body = await extra.answer()
        assert await extra.closed()
        text = fe.metrics()
        for client in held:
            client.close()

        async def served() -> bool:
            return await ready(fe) == 200

        await eventually(served)
    assert status == 503
    assert headers["content-type"] == "application/json"
    assert headers["retry-after"] == "1"
    assert "its limit (max_connections)" in orjson.loads(body)["error"]
    assert metric(text, CLOSED, reason="refused") == 1
    assert metric(text, "clipper_frontend_http_max_connections") == 3
    assert metric(text, "clipper_frontend_http_connections") == 3


async def test_a_client_that_leaves_mid_upload_is_info_not_a_server_error(
    routes: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running(routes) as fe:
        leaving = await Client.connect(fe)
        await leaving.send(HEAD + b'{"inp')
        await asyncio.sleep(0.1)  # the handler is reading the body
        leaving.close()

        async def counted() -> bool:
            return metric(fe.metrics(), CLOSED, reason="client_disconnected") == 1

        await eventually(counted)
        assert await ready(fe) == 200
        text = fe.metrics()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert any("disconnected before its answer" in r.getMessage() for r in caplog.records)
    assert metric(text, "clipper_frontend_errors_total", code="500") == 0


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\x00 / HTTP/1.1\r\n\r\n",  # not a method
        b"GET /readyz HTTP/1.1\r\nBad Header\r\n\r\n",  # a header without a colon
        b"GET /readyz HTTP/9.9\r\n\r\n",  # no such version
        b"GET /readyz HTTP/1.1\r\nHost: t\r\nX: " + b"x" * 70_000 + b"\r\n\r\n",  # too long
    ],
)
async def test_malformed_http_gets_a_json_error(routes: Path, request_bytes: bytes) -> None:
    async with running(routes) as fe:
        client = await Client.connect(fe)
        await client.send(request_bytes)
        status, headers, body = await client.answer()
        assert await ready(fe) == 200
        text = fe.metrics()
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert orjson.loads(body)["error"].startswith("bad HTTP request: ")
    assert metric(text, "clipper_frontend_errors_total", api="rest", code="400") == 1


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /digits/predict HTTP/1.0\r\nHost: t\r\n\r\n",  # the head alone
        b'POST /digits/predict HTTP/1.0\r\nHost: t\r\n\r\n{"input": [1]}',  # and a body
    ],
)
async def test_http_10_without_content_length_gets_411(routes: Path, request_bytes: bytes) -> None:
    async with running(routes) as fe:
        client = await Client.connect(fe)
        await client.send(request_bytes)
        status, headers, body = await client.answer()
        assert await ready(fe) == 200
    assert status == 411
    assert headers["content-type"] == "application/json"
    assert "Content-Length" in orjson.loads(body)["error"]
