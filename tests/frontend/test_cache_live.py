"""The prediction cache in the frontend: hits, coalescing, and turning it off."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from clipper.testing.frontend import hammer, metric, route, serving, write_routes
from clipper.testing.latency import LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits_batch

ROW = [1.0, 2.0, 3.0, 4.0]
LABELS = {"model": "echo", "version": "1"}


def app(server: ModelServer, cache: bool) -> dict[str, object]:
    return route("echo", {"echo": [server.address]}, latency_slo_ms=5000, cache={"enabled": cache})


async def test_a_repeated_query_is_a_hit(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    write_routes(routes, app(echo_server, cache=True))
    async with serving(routes) as fe:
        first = await hammer(fe.url, "echo", [ROW], concurrency=1)
        again = await hammer(fe.url, "echo", [ROW, [5.0, 6.0, 7.0, 8.0]], concurrency=1)
        text = fe.metrics()
    assert first[0][1]["output"] == again[0][1]["output"] == ROW
    assert metric(text, "clipper_frontend_cache_hits_total", app="echo") == 1
    assert metric(text, "clipper_frontend_cache_misses_total", app="echo") == 2
    assert metric(text, "clipper_frontend_batch_size_sum", **LABELS) == 2
    assert metric(text, "clipper_frontend_cache_hit_ratio", app="echo") == 1 / 3


async def test_a_burst_of_identical_queries_costs_one_evaluation(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    write_routes(routes, app(echo_server, cache=True))
    latency.set(0.3)  # the first evaluation is still running when the others arrive
    async with serving(routes) as fe:
        answers = await hammer(fe.url, "echo", [ROW] * 20, concurrency=20)
        text = fe.metrics()
    assert all(status == 200 and a["output"] == ROW for status, a in answers)
    assert metric(text, "clipper_frontend_batch_size_sum", **LABELS) == 1
    assert metric(text, "clipper_frontend_cache_misses_total", app="echo") == 1
    shared = metric(text, "clipper_frontend_cache_coalesced_total", app="echo")
    assert shared + metric(text, "clipper_frontend_cache_hits_total", app="echo") == 19
    assert shared >= 1


async def test_an_app_can_turn_its_cache_off(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    write_routes(routes, app(echo_server, cache=False))
    async with serving(routes) as fe:
        await hammer(fe.url, "echo", [ROW, ROW, ROW], concurrency=1)
        text = fe.metrics()
    assert metric(text, "clipper_frontend_batch_size_sum", **LABELS) == 3
    assert metric(text, "clipper_frontend_cache_hits_total", app="echo") == 0


async def test_a_classifiers_class_labels_are_cached(
    routes: Path, graded_servers: dict[str, ModelServer], caplog: pytest.LogCaptureFixture
) -> None:
    """A classifier answers one label per row: a 1-D output whose rows are numpy
    scalars. They are cached like any row, without an error on the event loop."""
    server = graded_servers["good"]
    write_routes(routes, route("digits", {"good": [server.address]}, latency_slo_ms=5000))
    rows = digits_batch(3).tolist()
    with caplog.at_level(logging.ERROR):
        async with serving(routes) as fe:
            first = await hammer(fe.url, "digits", rows, concurrency=1)
            again = await hammer(fe.url, "digits", rows, concurrency=1)
            text = fe.metrics()
    assert [a["output"] for _, a in first] == [a["output"] for _, a in again]
    assert not any(a["default"] for _, a in again)
    assert metric(text, "clipper_frontend_cache_hits_total", app="digits") == 3
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_full_cache_keeps_rows_sighted_once_out_and_says_so(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    """A stream with no repeats fills a small cache; past that, its rows are only
    sighted (the doorkeeper), not stored and evicted, and /metrics says so."""
    small = route(
        "echo", {"echo": [echo_server.address]}, latency_slo_ms=5000, cache={"max_bytes": 65536}
    )
    write_routes(routes, small)
    rows = [[float(i), 0.0, 0.0, 0.0] for i in range(300)]
    async with serving(routes) as fe:
        answers = await hammer(fe.url, "echo", rows, concurrency=8)
        text = fe.metrics()
    assert [a["output"] for _, a in answers] == rows  # every row answered by the model
    stored = 65536 // (4 * 8 + 448)  # rows of 4 float64 until the cache is full
    kept_out = metric(text, "clipper_frontend_cache_kept_out_total", app="echo")
    assert kept_out >= 300 - stored - 8  # all but what fitted (and what raced it in)
    assert metric(text, "clipper_frontend_cache_evictions_total", app="echo") < 16
    assert metric(text, "clipper_frontend_cache_doorkeeper_bytes", app="echo") == 4096
    assert metric(text, "clipper_frontend_cache_max_bytes", app="echo") == 65536
    assert metric(text, "clipper_frontend_cache_bytes", app="echo") <= 65536
