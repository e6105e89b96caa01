"""A model server under more load than it can take: bounded, refused early, unhurt.

A real server (``clipper model serve``) with a python model that holds each batch
until the test opens a gate, one worker (``--max-concurrency 1``) and room for two
waiting batches (``--max-queued-batches 2``): of eight concurrent calls, three are
admitted and five are refused at once with RESOURCE_EXHAUSTED and a message naming
the settings; the three finish once the gate opens, and the server serves normally
afterwards. gRPC's own bound on RPCs of any kind (``--max-concurrent-rpcs``) is
checked with long-lived health watches, which hold an RPC each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs, decode_response
from clipper.model_wrappers.server import serve
from clipper.model_wrappers.settings import ModelSettings, ServerSettings
from clipper.testing.frontend import metric
from clipper.testing.model_servers import ModelServer
from clipper.testing.timeouts import scaled
from clipper.testing.waiting import polls

CALLS = 8
QUEUED = 2
RPCS = 8
"""--max-concurrent-rpcs: the least the server accepts with one worker and two queued
batches is 1 + 2 + 4 (the headroom kept for health checks)."""


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate") / "open"


@pytest.fixture(scope="module")
def server(gate: Path) -> Iterator[ModelServer]:
    args = ["--max-concurrency", "1", "--max-queued-batches", str(QUEUED)]
    args += ["--max-concurrent-rpcs", str(RPCS)]
    with ModelServer.start(
        "python",
        "clipper.testing.functions:gated_identity",
        name="held",
        args=args,
        env={"CLIPPER_TESTING_GATE": str(gate)},
    ) as started:
        yield started


def request(value: float) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="held")
    add_raw_inputs(message, {"input": np.full((1, 2), value, dtype=np.float32)})
    return message


async def test_calls_past_the_queue_bound_are_refused_and_the_rest_served(
    server: ModelServer, gate: Path
) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        calls = [
            asyncio.ensure_future(stub.ModelInfer(request(i), timeout=scaled(120)))
            for i in range(CALLS)
        ]
        refused = CALLS - 1 - QUEUED
        async for _ in polls(120, interval=0.01):  # refusals come back at once; admitted wait
            if sum(call.done() for call in calls) >= refused:
                break
        await asyncio.sleep(0.2)  # nothing more finishes while the gate is shut
        done = [call for call in calls if call.done()]
        assert len(done) == refused
        for call in done:
            error = call.exception()
            assert isinstance(error, grpc.aio.AioRpcError)
            assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "model 'held' is overloaded" in (error.details() or "")
            assert f"--max-queued-batches {QUEUED}" in (error.details() or "")
        queued = metric(server.metrics_text(), "clipper_model_queued_batches")
        assert queued == QUEUED
        await asyncio.to_thread(gate.touch)
        admitted = [(i, call) for i, call in enumerate(calls) if call not in done]
        answers = await asyncio.gather(*(call for _, call in admitted))
        for (sent, _), answer in zip(admitted, answers, strict=True):  # each its own answer
            assert float(decode_response(answer)["output"][0, 0]) == sent
        again = decode_response(await stub.ModelInfer(request(42.0), timeout=scaled(30)))
        assert float(again["output"][0, 0]) == 42.0
    text = server.metrics_text()
    assert metric(text, "clipper_model_rejected_total") == refused
    assert metric(text, "clipper_model_max_queued_batches") == QUEUED
    assert metric(text, "clipper_model_max_concurrent_rpcs") == RPCS
    assert metric(text, "clipper_model_queued_batches") == 0
    assert "Task exception was never retrieved" not in server.logs()


async def test_rpcs_past_the_grpc_bound_are_refused_and_the_server_recovers(
    server: ModelServer,
) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        watches = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(RPCS)]
        for watch in watches:  # each is held by the server once it has sent a status
            await watch.read()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ServerLive(pb.ServerLiveRequest(), timeout=scaled(30))
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        for watch in watches:
            watch.cancel()
        live, codes = None, set()
        async for _ in polls(10, interval=0.01):  # it lets go of a cancelled watch soon after
            try:
                live = await stub.ServerLive(pb.ServerLiveRequest(), timeout=scaled(30))
                break
            except grpc.aio.AioRpcError as exc:
                codes.add(exc.code())
        assert codes <= {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert live is not None
        assert live.live


async def test_an_rpc_bound_below_the_admitted_batches_is_refused_at_start() -> None:
    model = ModelSettings(framework="noop", name="m", max_concurrency=4)
    settings = ServerSettings(port=0, max_queued_batches=16, max_concurrent_rpcs=10)
    assert await serve(model, settings) == 2
