"""SIGTERM drains: routers are told first, requests in flight finish, the process exits 0."""

from __future__ import annotations

import asyncio
import signal

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs, decode_response
from clipper.testing.model_servers import ModelServer
from clipper.testing.processes import wait_for
from clipper.testing.timeouts import scaled

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def inflight(server: ModelServer) -> float:
    for line in server.metrics_text().splitlines():
        if line.startswith("clipper_model_inflight_requests "):
            return float(line.split()[1])
    raise AssertionError("no clipper_model_inflight_requests in the metrics")


async def test_sigterm_loses_no_request_in_flight() -> None:
    # Every call takes 1.5 s, six at once: SIGTERM lands while all six run.
    args = ["--max-concurrency", "6", "--drain-delay-s", "2", "--grace-period-s", "60"]
    env = {"CLIPPER_TESTING_DELAY_S": "1.5"}
    uri = "clipper.testing.functions:slow_identity"
    with ModelServer.start("python", uri, name="slow", args=args, env=env) as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)

            async def infer(value: float) -> np.ndarray:
                request = pb.ModelInferRequest(model_name="slow")
                add_raw_inputs(request, {"x": np.full((2, 3), value)})
                return decode_response(await stub.ModelInfer(request, timeout=scaled(60)))["output"]

            # A health watch stays open through the drain; it must not hold the exit up.
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
            assert (await watch.read()).status == SERVING

            in_flight = [asyncio.create_task(infer(float(i))) for i in range(6)]
            await asyncio.to_thread(wait_for, lambda: inflight(server) == 6, 30)
            # The server stays responsive while its worker threads are busy.
            assert (await stub.ServerLive(pb.ServerLiveRequest())).live
            assert not any(task.done() for task in in_flight)

            server.process.signal(signal.SIGTERM)
            assert (await watch.read()).status == NOT_SERVING
            # Still inside the drain delay: a late request is served, not refused.
            late = asyncio.create_task(infer(99.0))
            assert not (await stub.ServerReady(pb.ServerReadyRequest())).ready

            answers = await asyncio.gather(*in_flight, late)
            for value, answer in zip([*range(6), 99.0], answers, strict=True):
                np.testing.assert_array_equal(answer, np.full((2, 3), value))

            # The watch is still open; the process exits anyway, well inside the grace period.
            exit_code = await asyncio.to_thread(server.process.wait, 30)
            assert exit_code == 0, server.logs()
            watch.cancel()

        logs = server.logs()
        assert "draining: 6 inference calls in flight" in logs
        assert "grace period over" not in logs
        assert "stopped" in logs
