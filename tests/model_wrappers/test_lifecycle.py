"""A container is live but not ready while its model loads, and SIGTERM then stops it."""

from __future__ import annotations

import signal

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs, decode_response
from clipper.testing.model_servers import ModelServer, serve_command
from clipper.testing.processes import ClipperProcess, wait_for

URI = "clipper.testing.slow_loading:identity"


def start(delay_s: float) -> tuple[ClipperProcess, int]:
    """The server on a port of its choosing, as soon as it listens (while it loads)."""
    env = {"CLIPPER_TESTING_IMPORT_DELAY_S": str(delay_s)}
    process = ClipperProcess(serve_command("python", "slow", URI, metrics=False), env=env)
    server = ModelServer(process, "slow").wait_listening()
    process.wait_port(server.port)
    return process, server.port


def test_loading_is_live_not_ready_then_ready() -> None:
    process, port = start(delay_s=3)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            assert stub.ServerLive(pb.ServerLiveRequest()).live
            assert not stub.ServerReady(pb.ServerReadyRequest()).ready
            assert not stub.ModelReady(pb.ModelReadyRequest(name="slow")).ready
            status = health.Check(health_pb2.HealthCheckRequest(service="")).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            request = pb.ModelInferRequest(model_name="slow")
            add_raw_inputs(request, {"x": np.ones((1, 2))})
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(request)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "still loading" in caught.value.details()

            wait_for(lambda: stub.ServerReady(pb.ServerReadyRequest()).ready, timeout=60)
            status = health.Check(health_pb2.HealthCheckRequest(service="")).status
            assert status == health_pb2.HealthCheckResponse.SERVING
            assert decode_response(stub.ModelInfer(request))["output"].tolist() == [[1.0, 1.0]]
    finally:
        assert process.stop() == 0


def test_sigterm_while_loading_exits_without_waiting_for_the_load() -> None:
    process, _ = start(delay_s=600)
    try:
        process.signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.stop()
    assert "stopped while loading" in process.log_path.read_text()
