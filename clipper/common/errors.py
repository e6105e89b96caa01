"""One error hierarchy for every component.

Each error class carries the HTTP status and the gRPC status code it maps to, so a
transport maps errors in exactly one place: the REST layer reads ``http_status``
and answers ``{"error": message}`` (the Open Inference Protocol's error body); the
gRPC layer reads ``grpc_code`` and aborts with the message as details. Anything
that is not a ``ClipperError`` is a bug and surfaces as 500 / INTERNAL.

``error_from_grpc`` goes the other way: when the frontend calls a model container
and gets a status back, the same class (and so the same HTTP status) reaches the
client, so a bad input rejected by the container is still a 400 at the frontend.
RESOURCE_EXHAUSTED is two things in gRPC: a full queue (a model server's
``--max-queued-batches`` or gRPC's concurrent-RPC bound: ``Overloaded``, 429, retry
later -- the replica is busy, not down, so the frontend does not mark it down) and
a message over a size limit (gRPC's ``... larger than max ...``: ``PayloadTooLarge``,
413, which no retry fixes).
"""

from __future__ import annotations

from typing import Any, ClassVar

import grpc


class ClipperError(Exception):
    """Root of all errors that a request, a manifest or a model can cause."""

    http_status: ClassVar[int] = 500
    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, Any]:
        """The Open Inference Protocol's error body."""
        return {"error": self.message}

    def http_headers(self) -> dict[str, str]:
        """Extra response headers (``Retry-After`` for overload)."""
        return {}


class InvalidInput(ClipperError):
    """The request is malformed: bad JSON, wrong input name, dtype or shape."""

    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ClipperError):
    """An unknown app, model, version or query id."""

    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class RequestTimeout(ClipperError):
    """The client did not send its request body within the server's body timeout."""

    http_status = 408
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class LengthRequired(ClipperError):
    """A request body came without a declared length (``Content-Length`` or chunked)."""

    http_status = 411
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class PayloadTooLarge(ClipperError):
    """The body is over the configured limit."""

    http_status = 413
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Overloaded(ClipperError):
    """A bounded queue is full; the client should retry after ``retry_after`` seconds."""

    http_status = 429
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.hold_s = 0.0
        """How long a transport holds this refusal before sending it (see the frontend's
        ``pace_refusals``); 0: at once."""

    def http_headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class Unavailable(ClipperError):
    """No replica can serve the request right now (down, draining, not ready)."""

    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(ClipperError):
    """The request's deadline passed before an answer came back."""

    http_status = 504
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class ModelError(ClipperError):
    """The model raised while predicting; the message is the model's own."""

    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL


class ModelLoadError(ClipperError):
    """A model could not be loaded; its server exits non-zero with this message."""


class ConfigError(ClipperError):
    """A manifest, settings file or command-line flag is invalid.

    ``location`` names where (file, object, field) so the user can fix it.
    """

    http_status = 422
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, location: str = "") -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location


class InvalidManifests(ConfigError):
    """Several problems in a set of manifests, all reported at once.

    ``errors`` holds one ``ConfigError`` per problem, each naming its file, object
    and field; the message lists them all, one a line.
    """

    def __init__(self, errors: list[ConfigError]) -> None:
        count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        lines = "\n".join(f"  {error.message}" for error in errors)
        super().__init__(f"{count} in the manifests:\n{lines}")
        self.errors = list(errors)


_BY_GRPC_CODE: dict[grpc.StatusCode, type[ClipperError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInput,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Overloaded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.INTERNAL: ModelError,
}


_TOO_LARGE = "larger than max"
"""gRPC's wording for a message over its size limit, sent or received."""


def error_from_grpc(code: grpc.StatusCode, details: str | None) -> ClipperError:
    """The ``ClipperError`` for a status that a downstream gRPC call returned."""
    message = details or code.name
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE in message:
        return PayloadTooLarge(message)
    return _BY_GRPC_CODE.get(code, ClipperError)(message)


class ModelFetchError(ModelLoadError):
    """A model could not be fetched from its URI (http, https, s3) into local storage.

    The message names the URI (never credentials) and the cause; it is what
    ``clipper model fetch`` prints as its last line, so it becomes the init
    container's termination message and the ModelDeployment's failure reason.
    """
