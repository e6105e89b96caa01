"""The native gRPC front (``clipper-grpc-front``): what only it can get wrong.

That it answers as ``grpc.aio`` does is checked by the other tests here, which run
against both servers. These cover the front as a process of its own (found or not,
restarted when it dies, gone when its frontend dies) and the messages it relays raw.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from clipper.common.errors import ConfigError
from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs
from clipper.frontend.grpc.native import ENV, NativeGrpcServer, find_front
from clipper.frontend.grpc.server import GrpcServer
from clipper.frontend.runtime import Frontend
from clipper.frontend.settings import FrontendSettings
from clipper.testing.frontend import FrontendProcess, metric, route, serving, write_routes
from clipper.testing.latency import LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.processes import port_open, wait_for
from clipper.testing.timeouts import scaled
from clipper.testing.waiting import eventually

FRONT_STARTED = re.compile(r"gRPC served by clipper-grpc-front \(pid (\d+)\) on port (\d+)")


@pytest.fixture
def echo_routes(routes: Path, echo_server: ModelServer) -> Path:
    return write_routes(
        routes, route("echo", {"echo": [echo_server.address]}, latency_slo_ms=30_000)
    )


def echo_request() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="echo", id="r1")
    add_raw_inputs(request, {"input": np.arange(4.0).reshape(1, 4)})
    return request


async def infer(address: str) -> np.ndarray:
    async with grpc.aio.insecure_channel(address) as channel:
        answer = await pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            echo_request(), timeout=scaled(30)
        )
    return np.frombuffer(answer.raw_output_contents[0], dtype=np.float64)


def running(pid: int) -> bool:
    """``pid`` is a live clipper-grpc-front (not a zombie, not a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return "(clipper-grpc-fr" in stat and stat.rpartition(")")[2].split()[0] != "Z"


async def test_a_front_that_dies_is_logged_and_restarted_on_the_same_port(
    echo_routes: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(echo_routes, grpc_server="native") as fe:
        server = fe.frontend.grpc
        assert isinstance(server, NativeGrpcServer)
        first = server.front.pid
        assert first is not None
        assert running(first)
        assert list(await infer(fe.grpc_address)) == [0.0, 1.0, 2.0, 3.0]

        os.kill(first, signal.SIGKILL)
        await eventually(
            lambda: server.front.pid not in (None, first), 30, what="a restarted front"
        )
        # The same address: clients reconnect to the port they knew.
        assert list(await infer(fe.grpc_address)) == [0.0, 1.0, 2.0, 3.0]
        crashes = metric(fe.metrics(), "clipper_frontend_task_crashes_total", task="grpc_front")
    assert crashes == 1
    died = [r for r in caplog.records if "task grpc_front died" in r.getMessage()]
    assert len(died) == 1
    assert "killed by SIGKILL" in died[0].getMessage()
    assert died[0].exc_info is not None  # with its traceback


def test_a_frontend_killed_outright_leaves_no_front_holding_its_port(echo_routes: Path) -> None:
    frontend = FrontendProcess(echo_routes, ["--grpc-server", "native"]).wait_ready()
    try:
        found = FRONT_STARTED.search(frontend.process.logs())
        assert found is not None, frontend.process.logs()
        pid, port = int(found.group(1)), int(found.group(2))
        assert port == frontend.grpc_port
        assert running(pid)
        frontend.process.signal(signal.SIGKILL)
        # The kernel tells the front (PR_SET_PDEATHSIG), and it stops on its own.
        wait_for(lambda: not running(pid), timeout=30, what="the front to exit")
        assert not port_open(port)
    finally:
        frontend.stop()


async def test_a_message_that_is_not_the_methods_type_is_invalid_argument(
    echo_routes: Path,
) -> None:
    async with (
        serving(echo_routes, grpc_server="native") as fe,
        grpc.aio.insecure_channel(fe.grpc_address) as channel,
    ):
        raw = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await raw(b"\xff\xff\xff not protobuf", timeout=scaled(10))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid inference.ModelInferRequest message" in str(refused.value.details())
        # The link and the front go on.
        assert list(await infer(fe.grpc_address)) == [0.0, 1.0, 2.0, 3.0]


async def test_methods_outside_the_service_are_unimplemented(echo_routes: Path) -> None:
    async with (
        serving(echo_routes, grpc_server="native") as fe,
        grpc.aio.insecure_channel(fe.grpc_address) as channel,
    ):
        for method in ("/inference.GRPCInferenceService/RepositoryIndex", "/other.Service/Call"):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await channel.unary_unary(method)(b"", timeout=scaled(10))
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED, method
        assert list(await infer(fe.grpc_address)) == [0.0, 1.0, 2.0, 3.0]


async def test_errors_the_front_answers_itself_are_counted_by_the_frontend(
    echo_routes: Path, latency: LatencyControl
) -> None:
    """Calls the front refuses never reach Python; it reports their counts over the
    link, so ``clipper_frontend_errors_total`` shows every error a client saw."""
    latency.set(3.0)  # the first call holds the only slot while the second arrives
    async with (
        serving(echo_routes, grpc_server="native", grpc_max_concurrent_rpcs=1) as fe,
        grpc.aio.insecure_channel(fe.grpc_address) as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        held = asyncio.ensure_future(stub.ModelInfer(echo_request(), timeout=scaled(30)))
        plane = fe.frontend.plane
        await eventually(lambda: plane.admission.rows == 1, what="the first call in")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ModelInfer(echo_request(), timeout=scaled(30))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        await held
        latency.set(0.0)
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await channel.unary_unary("/other.Service/Call")(b"", timeout=scaled(10))
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED

        def counted() -> tuple[float, float] | None:
            text = fe.metrics()
            found = (
                metric(text, "clipper_frontend_errors_total", api="oip_grpc", code=code)
                for code in ("RESOURCE_EXHAUSTED", "UNIMPLEMENTED")
            )
            numbers = tuple(found)
            return numbers if numbers == (1.0, 1.0) else None

        assert await eventually(counted, within_s=10, what="the front's refusals counted")


async def test_where_the_front_is_found_and_what_happens_without_it(
    echo_routes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    installed = find_front()
    assert installed is not None, "run `make grpc-front`"
    assert installed == Path(sys.executable).parent / "clipper-grpc-front"

    # Neither beside this interpreter nor on the PATH: not installed.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_front() is None
    with caplog.at_level(logging.WARNING):
        auto = Frontend(FrontendSettings(routes=echo_routes, grpc_server="auto"))
    assert isinstance(auto.grpc, GrpcServer)
    assert "gRPC served by grpc.aio: clipper-grpc-front is not installed" in caplog.text
    with pytest.raises(ConfigError, match="make grpc-front"):
        Frontend(FrontendSettings(routes=echo_routes, grpc_server="native"))

    # On the PATH, or named by the environment.
    (tmp_path / "clipper-grpc-front").symlink_to(installed)
    assert find_front() == tmp_path / "clipper-grpc-front"
    monkeypatch.setenv(ENV, str(installed))
    assert find_front() == installed
    monkeypatch.setenv(ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="is not an executable file"):
        find_front()
