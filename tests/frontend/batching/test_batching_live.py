"""Batching against a real model container whose latency the test controls."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import numpy as np

from clipper.testing.frontend import hammer, metric, route, serving, write_routes
from clipper.testing.latency import LatencyControl
from clipper.testing.model_servers import ModelServer

LABELS = {"model": "echo", "version": "1"}


def echo_app(server: ModelServer, batching: dict[str, object], **fields: object) -> dict:
    fields.setdefault("latency_slo_ms", 200)
    fields.setdefault("cache", {"enabled": False})
    return route("echo", {"echo": [server.address]}, batching={"echo": batching}, **fields)


def rows(n: int, start: int = 0) -> list[list[float]]:
    return [[float(start + i), 0.0, 1.0, 2.0] for i in range(n)]


async def test_the_batch_limit_grows_under_load_and_falls_when_the_model_slows(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    # SLO 500 ms: AIMD's budget per batch is 250 ms.
    write_routes(routes, echo_app(echo_server, {"max_batch_size": 64}, latency_slo_ms=500))
    latency.set(0.002, 0.0001)  # fast: ~5 ms for 32 rows, far within the budget
    async with serving(routes) as fe:
        answers = await hammer(fe.url, "echo", rows(1200), concurrency=32)
        assert all(status == 200 for status, _ in answers)
        served = [a for _, a in answers if not a["default"]]
        assert len(served) > 1100  # a stall of the shared machine may cost a few defaults
        grown = metric(fe.metrics(), "clipper_frontend_batch_limit", **LABELS)
        assert grown >= 8, fe.metrics()

        latency.set(0.6)  # now every batch overruns the budget (and the SLO)
        await hammer(fe.url, "echo", rows(150, start=5000), concurrency=32)
        fallen = metric(fe.metrics(), "clipper_frontend_batch_limit", **LABELS)
    assert fallen < grown


async def test_multi_row_requests_are_split_across_batches_and_reassembled(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    batching = {"adaptive": False, "max_batch_size": 3}
    write_routes(routes, echo_app(echo_server, batching, latency_slo_ms=5000))
    batch = rows(10)
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        async with http.post(f"{fe.url}/echo/predict", json={"input_batch": batch}) as r:
            answers = (await r.json())["batch_predictions"]
        tensor = {"name": "input", "datatype": "FP64", "shape": [10, 4], "data": batch}
        async with http.post(f"{fe.url}/v2/models/echo/infer", json={"inputs": [tensor]}) as r:
            output = (await r.json())["outputs"][0]
        text = fe.metrics()
    assert [a["output"] for a in answers] == batch
    assert np.reshape(output["data"], output["shape"]).tolist() == batch
    sizes = metric(text, "clipper_frontend_batch_size_count", **LABELS)
    assert metric(text, "clipper_frontend_batch_size_sum", **LABELS) == 20
    assert sizes >= 8  # at most 3 rows per batch: 4 batches per request
    assert metric(text, "clipper_frontend_batch_size_bucket", le="4.0", **LABELS) == sizes


async def test_delayed_batching_waits_for_a_fuller_batch_at_low_load(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    batching = {"adaptive": False, "max_batch_size": 8, "batch_wait_ms": 500}
    write_routes(routes, echo_app(echo_server, batching, latency_slo_ms=5000))
    async with serving(routes) as fe:
        answers = await hammer(fe.url, "echo", rows(8), concurrency=8)
        text = fe.metrics()
    assert [a["output"] for _, a in answers] == rows(8)
    assert metric(text, "clipper_frontend_batch_size_count", **LABELS) <= 2


async def test_a_slow_model_answers_the_default_at_the_slo_and_expired_rows_never_run(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    batching = {"adaptive": False, "max_batch_size": 1}
    write_routes(routes, echo_app(echo_server, batching, latency_slo_ms=100, default_output=-1))
    latency.set(0.4)
    tensor = {"name": "input", "datatype": "FP64", "shape": [2, 4], "data": rows(2, start=50)}
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        answers = await hammer(fe.url, "echo", rows(6), concurrency=6)
        text = fe.metrics()
        async with http.post(f"{fe.url}/v2/models/echo/infer", json={"inputs": [tensor]}) as r:
            assert r.status == 200
            oip = await r.json()
    # Over OIP the default rows hold the default output, and the parameters say so.
    # (The echo model declares no output, so the default gives the row its shape.)
    assert oip["outputs"][0]["data"] == [-1, -1]
    assert oip["parameters"]["default"] is True
    assert oip["parameters"]["default_rows"] == "0,1"
    assert oip["parameters"]["default_explanation"].startswith("slo")
    for status, answer in answers:
        assert status == 200
        assert answer["default"] is True
        assert answer["output"] == -1
        assert answer["default_explanation"].startswith("slo: no prediction within the 100 ms")
    assert metric(text, "clipper_frontend_default_outputs_total", app="echo", reason="slo") == 6
    # The first row went to the model (and was cut off by its gRPC deadline); the
    # others expired in the queue and were never sent.
    sent = metric(text, "clipper_frontend_batch_size_sum", **LABELS)
    assert 1 <= sent <= 2
