"""The gRPC server bounds its clients: at most ``grpc_max_concurrent_rpcs`` calls."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import pytest

from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs
from clipper.testing.frontend import metric, route, serving, write_routes
from clipper.testing.latency import LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.timeouts import scaled

pytestmark = pytest.mark.usefixtures("grpc_server")  # both servers: conftest.py


async def test_calls_past_the_concurrency_bound_are_resource_exhausted(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    app = route("echo", {"echo": [echo_server.address]}, latency_slo_ms=10_000)
    write_routes(routes, app)
    latency.set(1.0)  # the first calls are still running when the others arrive

    async def infer(stub: pb_grpc.GRPCInferenceServiceStub) -> grpc.StatusCode:
        request = pb.ModelInferRequest(model_name="echo")
        add_raw_inputs(request, {"input": np.ones((1, 4))})
        try:
            await stub.ModelInfer(request, timeout=scaled(30))
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    async with (
        serving(routes, grpc_max_concurrent_rpcs=2) as fe,
        grpc.aio.insecure_channel(fe.grpc_address) as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        codes = await asyncio.gather(*(infer(stub) for _ in range(6)))
        latency.set(0.0)
        after = await infer(stub)
        text = fe.metrics()
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
    assert codes.count(grpc.StatusCode.OK) <= 2
    assert after == grpc.StatusCode.OK  # the server keeps serving
    assert metric(text, "clipper_frontend_grpc_max_concurrent_rpcs") == 2
