"""What every REST route shares: request ids, body limits, JSON, error mapping.

Errors are mapped to HTTP in this one place: a ``ClipperError`` becomes its
``http_status`` with the Open Inference Protocol's error body
``{"error": message}`` (plus ``Retry-After`` for 429), counted by status; any
other exception is a bug, logged with its traceback, and answered 500 with the
same body shape, so a client never sees an HTML error page and the server keeps
serving.

Routes are wrapped by ``endpoint`` rather than a middleware: one function call
less per request, and the API label for metrics is bound once. A handler gets
the request and the app name its path names (``""`` for routes without one).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from clipper.common import logs
from clipper.common.errors import (
    ClipperError,
    InvalidInput,
    LengthRequired,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
)
from clipper.frontend.metrics import Metrics
from clipper.frontend.rest.connections import BodyTimeout

log = logging.getLogger(__name__)

Handler = Callable[[web.BaseRequest, str], Awaitable[web.StreamResponse]]

REQUEST_ID = "X-Request-ID"
CONTEXT = "X-Clipper-Context"
JSON = "application/json"
_ids = itertools.count(1)
_prefix = os.urandom(4).hex()


def endpoint(api: str, metrics: Metrics, handler: Handler) -> Handler:
    """``handler`` with a request id, JSON errors and error counting."""

    async def serve(request: web.BaseRequest, app: str) -> web.StreamResponse:
        request_id = request.headers.get(REQUEST_ID) or f"{_prefix}-{next(_ids)}"
        logs.request_id.set(request_id)
        try:
            response = await handler(request, app)
        except ClipperError as exc:
            if exc.http_status >= 500:
                log.warning("%s %s: %s", request.method, request.path, exc.message)
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s: %d %s", request.method, request.path, exc.http_status, exc)
            metrics.error(api, str(exc.http_status))
            if isinstance(exc, Overloaded) and exc.hold_s > 0:
                await asyncio.sleep(exc.hold_s)  # paced: see FrontendSettings.pace_refusals
            response = error_response(exc)
        except ConnectionError:  # the client left mid-upload: logged and counted as it closes
            response = json_response({"error": "the client disconnected"}, 499)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            metrics.error(api, "500")
            response = json_response({"error": "internal error; see the frontend's log"}, 500)
        response.headers[REQUEST_ID] = request_id
        return response

    return serve


def error_response(exc: ClipperError) -> web.Response:
    response = json_response(exc.to_json(), exc.http_status)
    response.headers.update(exc.http_headers())
    if isinstance(exc, RequestTimeout):
        response.force_close()  # the rest of the body may still come: not a request
    return response


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type=JSON)


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The body, or ``PayloadTooLarge`` past ``limit`` bytes (checked before reading
    when the length is declared, and while reading when the body is chunked);
    ``LengthRequired`` when it has no declared length (HTTP/1.0 would read until
    the client closes, so the client would wait forever for its answer);
    ``RequestTimeout`` when it does not arrive within the body timeout."""
    length = request.content_length
    if length is None and "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        raise LengthRequired(
            f"{request.method} {request.path} needs a body with a Content-Length header "
            "(or Transfer-Encoding: chunked)"
        )
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body has {length} bytes; the limit is {limit}")
    chunks = []
    size = 0
    try:
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except BodyTimeout:
        raise RequestTimeout(
            f"the body did not arrive within the frontend's body timeout ({size} bytes came)"
        ) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(body: bytes, what: str = "the body") -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None


def json_object(body: bytes) -> dict[str, Any]:
    value = parse_json(body)
    if not isinstance(value, dict):
        raise InvalidInput(f"the body must be a JSON object, got {type(value).__name__}")
    return value
