"""HTTP connections: read timeouts, a bound on open connections, JSON errors.

aiohttp's low-level server trusts its clients: a connection may take an hour to
send its request head (the keep-alive timer is the only clock), a body may
trickle forever, there is no bound on open connections, and errors of its HTTP
parser are answered in text/plain. With a 1,024 open-file limit, 1,100
half-sent requests locked every new client out. So the server here is aiohttp's
``Server`` and ``RequestHandler`` with four changes, all per connection and
none on the request path proper:

* **Header timeout** (``header_timeout_s``): a request head must be complete
  within this many seconds of the connection opening or of its first byte
  arriving (nginx's ``client_header_timeout``); else the connection is closed.
  An idle keep-alive connection (no byte sent) is closed after
  ``keepalive_timeout_s`` instead, which should outlast a load balancer's idle
  timeout, so that it never reuses a connection the frontend just closed.
* **Body timeout** (``body_timeout_s``): the whole body must arrive within this
  many seconds of its head -- a total, not a gap between reads, so a body sent
  a byte at a time cannot hold a connection. The handler reading the body gets
  ``BodyTimeout``, answered 408, and the connection is closed.
* **A bound on open connections** (``max_connections``). Past it a new
  connection is answered at once with a 503 JSON body and ``Retry-After`` and
  closed, rather than refused silently or left in the accept backlog: the
  client learns why, and a load balancer retries elsewhere. Answering costs a
  file descriptor for at most ``REFUSAL_LINGER_S`` (the 503 is written, the
  write side shut, the client's bytes drained so that closing does not reset
  the connection and lose the 503); past ``MAX_REFUSING`` such connections the
  rest are reset outright. The bound is lowered at start-up, with a warning, to
  what the open-file limit leaves (``usable_connections``), so the frontend's
  own file limit is never what hits first; the soft limit is first raised to
  the hard one, as servers commonly do.
* **JSON errors**: the HTTP parser's errors (a malformed request line or
  header, a body without a length) are answered like every other error,
  ``{"error": ...}`` in ``application/json``, counted by status, and logged at
  DEBUG (they are the client's fault). A body sent without a length after an
  HTTP/1.0 head is a 411.

A client that goes away before its answer is sent is not a server error: it is
logged at INFO and counted as ``client_disconnected``. Connection closings are
counted by reason in ``clipper_frontend_http_connections_closed_total``.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from clipper.frontend.metrics import Metrics

log = logging.getLogger(__name__)

MAX_REFUSING = 64
"""Connections being answered 503 at once; past it, new ones are reset."""
REFUSAL_LINGER_S = 1.0
"""How long a refused connection is drained before it is closed anyway."""
FD_RESERVE = 512
"""File descriptors kept for everything but REST connections: gRPC clients,
channels to model replicas, files, the event loop."""
_NO_LENGTH = "Data after `Connection: close`"  # llhttp: a body after a length-less head


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The REST server's per-connection bounds (from ``FrontendSettings``)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    keepalive_timeout_s: float = 75.0
    max_connections: int = 10_000


class BodyTimeout(asyncio.TimeoutError):
    """The body did not arrive within ``body_timeout_s`` of its head.

    A ``TimeoutError`` so that aiohttp, draining the rest of an unread body after
    the answer, takes it as the end of the drain and closes the connection."""


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
    return soft


def usable_connections(wanted: int, open_files: int) -> int:
    """``wanted``, or fewer if the open-file limit could not hold them."""
    room = open_files - FD_RESERVE - MAX_REFUSING
    if wanted <= room:
        return wanted
    usable = max(16, room)
    log.warning(
        "max_connections %d does not fit the open-file limit %d (less %d reserved for "
        "gRPC, replicas and refusals): serving at most %d REST connections; raise "
        "the limit (ulimit -n) to allow more",
        wanted,
        open_files,
        FD_RESERVE + MAX_REFUSING,
        usable,
    )
    return usable


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


class Server(web.Server):
    """aiohttp's low-level server with bounded connections (see the module)."""

    def __init__(
        self, handler: Any, limits: ConnectionLimits, metrics: Metrics, **kwargs: Any
    ) -> None:
        super().__init__(handler, keepalive_timeout=limits.keepalive_timeout_s, **kwargs)
        self.limits = limits
        self.max_connections = limits.max_connections
        self.metrics = metrics
        self.refusing = 0

    def __call__(self) -> asyncio.Protocol:  # type: ignore[override]
        if len(self._connections) >= self.max_connections:
            return _Refusal(self)
        return Connection(self, loop=self._loop, **self._kwargs)


class Connection(RequestHandler):
    """One client connection: aiohttp's handler plus header and body deadlines."""

    def __init__(self, manager: Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._server = manager
        self._limits = manager.limits
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body: Any = None  # the payload ``_body_timer`` watches

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_head()  # the first request's head counts from the connection's start

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        before = len(self._messages)
        super().data_received(data)
        if len(self._messages) > before:  # a head is complete (or unparseable)
            self._head_arrived(self._messages[-1][1])
        elif data and self._head_timer is None and self._body_timer is None:
            self._arm_head()  # the first bytes of the next request's head

    def _arm_head(self) -> None:
        self._head_timer = self._loop.call_later(self._limits.header_timeout_s, self._head_late)

    def _head_arrived(self, payload: Any) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._body_timer is None and not payload.is_eof():
            delay = self._limits.body_timeout_s
            self._body_timer = self._loop.call_later(delay, self._body_late, payload)
            self._body = payload

    def _head_late(self) -> None:
        self._head_timer = None
        if self._messages or self._request_in_progress:
            self._arm_head()  # a request is being served; its successor waits its turn
            return
        log.debug(
            "closing a connection: no complete request head in %ss", self._limits.header_timeout_s
        )
        self._server.metrics.connection_closed("header_timeout")
        self.force_close()

    def _body_late(self, payload: Any) -> None:
        self._body_timer = self._body = None
        if payload.is_eof():
            return
        log.debug("a request body did not arrive within %ss", self._limits.body_timeout_s)
        self._server.metrics.connection_closed("body_timeout")
        payload.set_exception(BodyTimeout())

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._body = None

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        if self._body_timer is not None and self._body is request.content:
            self._body_timer.cancel()
            self._body_timer = self._body = None
        resp, reset = await super().finish_response(request, resp, start_time)
        if reset:
            log.info(
                "%s %s: the client disconnected before its answer", request.method, request.path
            )
            self._server.metrics.connection_closed("client_disconnected")
        return resp, reset

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The HTTP parser's errors (and aiohttp's own), as JSON."""
        if request.writer.output_size > 0:
            raise ConnectionError("the answer has started; cannot send an error")
        if status >= 500:
            log.error("%s %s failed", request.method, request.path, exc_info=exc)
            text = "internal error; see the frontend's log"
        else:
            log.debug("bad HTTP request: %s", message or exc)
            text = f"bad HTTP request: {message or HTTPStatus(status).phrase}"
            if _NO_LENGTH in text:
                status = HTTPStatus.LENGTH_REQUIRED
                text = "a request body needs a Content-Length header (or chunked encoding)"
        self._server.metrics.error("rest", str(int(status)))
        response = web.Response(
            body=error_body(text), status=status, content_type="application/json"
        )
        response.force_close()
        return response


class _Refusal(asyncio.Protocol):
    """A connection past ``max_connections``: answered 503 and closed."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        server = self._server
        server.metrics.connection_closed("refused")
        if server.refusing >= MAX_REFUSING or not transport.can_write_eof():
            transport.abort()
            return
        server.refusing += 1
        transport.write(_refusal(server.max_connections))
        transport.write_eof()  # the client reads the 503, then closes: a clean close
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_LINGER_S, transport.abort)

    def data_received(self, data: bytes) -> None:
        pass  # drained: unread bytes at close would reset the connection

    def eof_received(self) -> bool:
        if self._transport is not None:
            self._transport.close()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._server.refusing -= 1
            self._timer = None


def _refusal(limit: int) -> bytes:
    body = error_body(
        f"the frontend has {limit} open connections, its limit (max_connections); "
        "retry shortly, or reuse connections"
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body
