"""Rows of several shapes for one model: batches never mix them, and none starve.

An app may leave its input shape open (``input`` unset, and a python model that
declares none): then one burst can queue rows of two lengths for one version.
A real frontend and a real model container (the identity function, any row
length) serve a burst of concurrent requests of both lengths.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.testing.asyncio_checks import unretrieved_task_errors
from clipper.testing.frontend import hammer, metric, route, serving, write_routes
from clipper.testing.model_servers import ModelServer

LABELS = {"model": "any", "version": "1"}


@pytest.fixture(scope="module")
def any_shape_server() -> Iterator[ModelServer]:
    """Identity with no declared input: rows of any length and dtype are accepted."""
    uri = "clipper.testing.functions:identity"
    with ModelServer.start("python", uri, name="any", args=["--threads", "1"]) as server:
        yield server


def mixed_rows(n: int) -> list[list[float]]:
    """Alternately 2 and 3 values per row, each row unique."""
    return [[float(i)] * (2 + i % 2) for i in range(n)]


@pytest.mark.parametrize("cache", [False, True], ids=["chunks", "cache"])
async def test_a_burst_of_mixed_row_lengths_gets_model_answers_and_the_app_keeps_serving(
    routes: Path, any_shape_server: ModelServer, cache: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # Delayed batching (20 ms) and 16 clients at once: batches of several rows form,
    # and both lengths are queued together.
    batching = {"adaptive": False, "max_batch_size": 16, "batch_wait_ms": 20}
    app = route(
        "any",
        {"any": [any_shape_server.address]},
        batching={"any": batching},
        latency_slo_ms=5000,
        cache={"enabled": cache},
    )
    write_routes(routes, app)
    burst = mixed_rows(96)
    with caplog.at_level(logging.WARNING):
        async with serving(routes) as fe:
            answers = await hammer(fe.url, "any", burst, concurrency=16)
            after = await hammer(fe.url, "any", [[-1.0, -2.0], [-1.0, -2.0, -3.0]], 2)
            text = fe.metrics()
        errors = unretrieved_task_errors(caplog)
    for row, (status, answer) in zip(burst, answers, strict=True):
        assert status == 200
        assert answer["default"] is False, answer["default_explanation"]
        assert answer["output"] == row
    assert [answer["output"] for _, answer in after] == [[-1.0, -2.0], [-1.0, -2.0, -3.0]]
    # Batching did merge queries (fewer batches than rows), just never across shapes.
    batches = metric(text, "clipper_frontend_batch_size_count", **LABELS)
    assert batches < metric(text, "clipper_frontend_batch_size_sum", **LABELS)
    assert metric(text, "clipper_frontend_task_crashes_total") == 0
    assert errors == []
