"""Bounded queues answer 429 / RESOURCE_EXHAUSTED with Retry-After; big bodies 413."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import grpc
import numpy as np
import pytest

from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs
from clipper.testing.frontend import metric, route, serving, write_routes
from clipper.testing.latency import LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.timeouts import scaled

ROW = [1.0, 2.0, 3.0, 4.0]


@pytest.fixture
def slow_routes(routes: Path, echo_server: ModelServer, latency: LatencyControl) -> Path:
    latency.set(0.5)
    app = route(
        "echo",
        {"echo": [echo_server.address]},
        latency_slo_ms=10_000,
        cache={"enabled": False},
        batching={"echo": {"adaptive": False, "max_batch_size": 1}},
    )
    return write_routes(routes, app)


async def test_a_full_queue_answers_429_with_retry_after(
    slow_routes: Path, latency: LatencyControl
) -> None:
    async with serving(slow_routes, queue_capacity=2) as fe, aiohttp.ClientSession() as http:

        async def predict(i: int) -> tuple[int, dict[str, str], dict]:
            async with http.post(f"{fe.url}/echo/predict", json={"input": [i, 0, 0, 0]}) as r:
                return r.status, dict(r.headers), await r.json()

        answers = await asyncio.gather(*(predict(i) for i in range(10)))
        statuses = sorted(status for status, _, _ in answers)
        refused = [(h, body) for status, h, body in answers if status == 429]
        latency.set(0.0)
        async with http.post(f"{fe.url}/echo/predict", json={"input": ROW}) as r:
            assert r.status == 200
        text = fe.metrics()
    # Two queued were admitted (three if the batcher took the first before the others
    # arrived); the rest were refused at once, not after waiting.
    admitted = statuses.count(200)
    assert admitted in (2, 3), statuses
    assert len(refused) == 10 - admitted
    for headers, body in refused:
        assert int(headers["Retry-After"]) >= 1
        assert "queue is full" in body["error"]
    assert metric(text, "clipper_frontend_errors_total", api="clipper", code="429") == len(refused)


async def test_a_full_queue_is_resource_exhausted_over_grpc(slow_routes: Path) -> None:
    async with (
        serving(slow_routes, queue_capacity=1) as fe,
        grpc.aio.insecure_channel(fe.grpc_address) as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        async def infer(i: int) -> grpc.aio.AioRpcError | None:
            request = pb.ModelInferRequest(model_name="echo")
            add_raw_inputs(request, {"input": np.array([[i, 0.0, 0.0, 0.0]])})
            try:
                await stub.ModelInfer(request, timeout=scaled(10))
            except grpc.aio.AioRpcError as exc:
                return exc
            return None

        errors = [e for e in await asyncio.gather(*(infer(i) for i in range(6))) if e]
    assert len(errors) in (4, 5)  # one queued (and perhaps one taken in flight) of six
    for error in errors:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailing = dict(error.trailing_metadata() or ())
        assert int(trailing["retry-after"]) >= 1


async def test_an_oversized_grpc_message_is_refused(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    write_routes(routes, route("echo", {"echo": [echo_server.address]}, latency_slo_ms=5000))
    big = pb.ModelInferRequest(model_name="echo")
    add_raw_inputs(big, {"input": np.zeros((1000, 4))})
    small = pb.ModelInferRequest(model_name="echo")
    add_raw_inputs(small, {"input": np.array([ROW])})
    async with (
        serving(routes, max_body_bytes=4096) as fe,
        grpc.aio.insecure_channel(fe.grpc_address) as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.ModelInfer(big, timeout=scaled(10))
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        await stub.ModelInfer(small, timeout=scaled(10))
