"""A downstream gRPC status becomes the error class the client should see."""

from __future__ import annotations

import grpc

from clipper.common.errors import (
    Overloaded,
    PayloadTooLarge,
    Unavailable,
    error_from_grpc,
)


def test_a_busy_replica_is_overloaded_not_unavailable() -> None:
    """The frontend marks a replica down on ``Unavailable`` only: a model server that
    refuses a batch because its queue is full is busy, and answers 429 with Retry-After."""
    details = "model 'm' is overloaded: 1 batch(es) running and 2 waiting for a worker"
    for text in (details, "Concurrent RPC limit exceeded!"):
        error = error_from_grpc(grpc.StatusCode.RESOURCE_EXHAUSTED, text)
        assert isinstance(error, Overloaded)
        assert not isinstance(error, Unavailable)
        assert error.message == text
        assert error.http_status == 429
        assert "Retry-After" in error.http_headers()


def test_a_message_over_grpcs_size_limit_is_too_large_not_overloaded() -> None:
    for text in (
        "Received message larger than max (70000000 vs. 67108864)",
        "Sent message larger than max (70000000 vs. 67108864)",
    ):
        error = error_from_grpc(grpc.StatusCode.RESOURCE_EXHAUSTED, text)
        assert isinstance(error, PayloadTooLarge)
        assert error.http_status == 413
        assert error.message == text
