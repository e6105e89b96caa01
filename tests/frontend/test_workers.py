"""``clipper frontend --workers N``: processes sharing both ports, supervised.

Real processes throughout: the supervisor and its workers are ``clipper
frontend``, the model is the echo container, clients open real connections.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np

from clipper.common.protocol import pb, pb_grpc
from clipper.testing.frontend import (
    WORKER_STARTED,
    FrontendProcess,
    metric,
    route,
    worker_running,
    write_routes,
)
from clipper.testing.latency import LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits
from clipper.testing.processes import ClipperProcess, wait_for
from clipper.testing.redis_server import RedisServer
from clipper.testing.timeouts import scaled

ROW = [1.0, 2.0, 3.0, 4.0]
REQUESTS = "clipper_frontend_request_duration_seconds_count"


def predict(url: str) -> tuple[int, dict]:
    """One query on a connection of its own (urllib never reuses one)."""
    request = urllib.request.Request(
        f"{url}/echo/predict",
        data=json.dumps({"input": ROW}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=scaled(30)) as answer:
        return answer.status, json.loads(answer.read())


def infer_grpc(address: str, calls: int = 1) -> None:
    """``calls`` OIP ModelInfer calls, one after another, on one channel (a connection)."""
    request = pb.ModelInferRequest(model_name="echo")
    tensor = request.inputs.add(name="input", datatype="FP64", shape=[1, 4])
    tensor.contents.fp64_contents.extend(ROW)
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for _ in range(calls):
            answer = stub.ModelInfer(request, timeout=scaled(30))
            assert np.frombuffer(answer.raw_output_contents[0], "<f8").tolist() == ROW


def workers_started(frontend: FrontendProcess) -> dict[int, int]:
    """Worker index -> pid of its latest start, from the supervisor's log."""
    return {int(i): int(pid) for i, pid in WORKER_STARTED.findall(frontend.process.logs())}


def readyz(url: str) -> tuple[int, dict]:
    """/readyz's status and body; (0, {}) while nothing answers."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=scaled(2)) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def start(routes: Path, echo_server: ModelServer, *args: str) -> FrontendProcess:
    """A frontend of two workers, once /readyz says both have started."""
    write_routes(routes, route("echo", {"echo": [echo_server.address]}, latency_slo_ms=10_000))
    frontend = FrontendProcess(routes, ["--workers", "2", *args]).wait_ready()
    wait_for(lambda: readyz(frontend.url)[0] == 200, what="both workers ready")
    if "--grpc-server" not in args:  # the native front, linked to each worker
        links = "clipper_frontend_grpc_front_links"
        wait_for(
            lambda: all(metric(frontend.metrics(), links, worker=w) == 1 for w in "01"),
            what="the gRPC front linked to both workers",
        )
    return frontend


def both_serving(frontend: FrontendProcess) -> bool:
    """Both workers answered a REST query since they (last) started."""
    for _ in range(20):
        assert predict(frontend.url)[0] == 200
    text = frontend.metrics()
    return all(metric(text, REQUESTS, worker=w, api="clipper") > 0 for w in ("0", "1"))


def test_one_grpc_channel_is_served_by_every_worker_through_the_native_front(
    routes: Path, echo_server: ModelServer
) -> None:
    """SO_REUSEPORT would give one connection to one worker; the front picks a worker
    per call (the one with the fewest unanswered; ties in turn)."""
    with start(routes, echo_server) as frontend:
        assert "one native front for all workers" in frontend.process.logs()
        infer_grpc(frontend.grpc_address, calls=20)
        text = frontend.metrics()
    calls = [metric(text, REQUESTS, worker=w, api="oip_grpc") for w in ("0", "1")]
    assert sum(calls) == 20
    assert min(calls) > 0, calls


def test_two_workers_share_the_rest_and_grpc_ports(routes: Path, echo_server: ModelServer) -> None:
    with start(routes, echo_server) as frontend:
        for _ in range(40):  # a connection each: the kernel spreads them by their hash
            status, answer = predict(frontend.url)
            assert (status, answer["output"]) == (200, ROW)
            infer_grpc(frontend.grpc_address)
        text = frontend.metrics()
        for worker in ("0", "1"):
            assert metric(text, REQUESTS, worker=worker, api="clipper") > 0
            assert metric(text, REQUESTS, worker=worker, api="oip_grpc") > 0
        assert metric(text, REQUESTS, api="clipper") == 40
        assert metric(text, REQUESTS, api="oip_grpc") == 40
        workers = {"0": {"ready": True}, "1": {"ready": True}}
        assert readyz(frontend.url) == (200, {"ready": True, "workers": workers})


def test_a_killed_worker_is_logged_and_restarted(routes: Path, echo_server: ModelServer) -> None:
    with start(routes, echo_server) as frontend:
        first = workers_started(frontend)
        assert sorted(first) == [0, 1]
        os.kill(first[1], signal.SIGKILL)
        wait_for(lambda: workers_started(frontend)[1] != first[1], what="worker 1 started again")
        log = frontend.process.logs()
        exited = f"frontend worker 1 (pid {first[1]}) killed by SIGKILL"
        assert f"task worker 1 died (WorkerExited: {exited}); restarting it" in log
        assert "Traceback" in log
        # the new worker 1 takes its share of connections again; worker 0 never stopped
        wait_for(lambda: both_serving(frontend), what="both workers serving again")
        assert workers_started(frontend)[0] == first[0]
        assert frontend.process.alive()


def test_sigterm_drains_every_worker_then_exits_0(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    with start(routes, echo_server, "--drain-delay-s", "1") as frontend:
        latency.set(1.0)
        results: list[tuple[int, dict]] = []
        threads = [
            threading.Thread(target=lambda: results.append(predict(frontend.url))) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        wait_for(
            lambda: metric(frontend.metrics(), "clipper_frontend_batch_size_count") >= 2,
            what="slow batches in flight",
        )
        frontend.process.signal(signal.SIGTERM)  # the supervisor only, as a kubelet does
        for thread in threads:
            thread.join(timeout=scaled(30))
        assert frontend.process.wait(timeout=60) == 0
    assert [status for status, _ in results] == [200] * 8
    assert all(answer["output"] == ROW and not answer["default"] for _, answer in results)
    log = frontend.process.log_path.read_text()
    assert log.count("shutting down: finishing requests in flight") == 2
    assert "frontend worker 0 stopped (exit status 0)" in log
    assert "frontend worker 1 stopped (exit status 0)" in log


def test_workers_stop_when_their_supervisor_is_killed_outright(
    routes: Path, echo_server: ModelServer
) -> None:
    with start(routes, echo_server) as frontend:
        workers = workers_started(frontend)
        assert all(map(worker_running, workers.values()))
        os.killpg(frontend.process.pid, signal.SIGKILL)  # no forwarding: the kernel's signal
        wait_for(lambda: not any(map(worker_running, workers.values())), what="every worker gone")


def test_bad_worker_counts_are_refused_with_the_bound(tmp_path: Path) -> None:
    for count, reason in (("0", "greater than or equal to 1"), ("65", "less than or equal to 64")):
        process = ClipperProcess(["frontend", "--workers", count, "--http-port", "0"])
        try:
            assert process.wait(timeout=60) == 2
        finally:
            process.stop()
        assert f"invalid --workers: Input should be {reason}" in process.logs()


def test_an_invalid_routes_file_stops_every_worker_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("apps: {a: {latency_slo_ms: -1}}")
    args = ["frontend", "--routes", str(path), "--http-port", "0", "--grpc-port", "0"]
    process = ClipperProcess([*args, "--workers", "2"])
    try:
        assert process.wait(timeout=60) == 1
    finally:
        process.stop()
    assert "exited with status 1 (its configuration); stopping" in process.logs()


def test_workers_share_an_inherited_listening_socket(
    routes: Path, echo_server: ModelServer, tmp_path: Path
) -> None:
    """Local mode's way: the run holds the REST socket and passes it down (--http-fd)."""
    write_routes(routes, route("echo", {"echo": [echo_server.address]}, latency_slo_ms=10_000))
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    args = ["--routes", str(routes), "--grpc-port", "0", "--workers", "2"]
    with (tmp_path / "frontend.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "clipper", "frontend", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
            env={**os.environ, "CLIPPER_FRONTEND_HTTP_FD": str(listener.fileno())},
        )
    try:
        wait_for(lambda: readyz(url)[0] == 200, what="both workers ready")
        assert readyz(url)[1]["workers"] == {"0": {"ready": True}, "1": {"ready": True}}
        for _ in range(10):
            status, answer = predict(url)
            assert (status, answer["output"]) == (200, ROW)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=scaled(60)) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        listener.close()


def post_json(url: str, body: dict) -> tuple[int, dict]:
    """POST on a connection of its own; the status and the JSON answer, 4xx included."""
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=scaled(30)) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_any_worker_takes_feedback_for_a_query_another_answered(
    routes: Path, graded_servers: dict[str, ModelServer], redis: RedisServer
) -> None:
    models = {grade: [server.address] for grade, server in graded_servers.items()}
    write_routes(routes, route("digits", models, selection={"type": "exp3"}, latency_slo_ms=5000))
    env = {"CLIPPER_FRONTEND_STATE_URL": redis.url}
    args = ["--workers", "2", "--state-backend", "redis"]
    pixels, labels = digits()
    with FrontendProcess(routes, args, env=env).wait_ready() as frontend:
        wait_for(lambda: readyz(frontend.url)[0] == 200, what="both workers ready")
        answered = []
        for i in range(24):  # each on a connection of its own: both workers answer some
            status, answer = post_json(
                f"{frontend.url}/digits/predict", {"input": pixels[i].tolist()}
            )
            assert status == 200, answer
            answered.append((answer["query_id"], int(labels[i])))
        # Once both workers' query logs are in Redis (flushed every --state-refresh-s),
        # each worker takes feedback for the other's queries at the first try: with
        # per-worker state about half of these would be 404 (unknown query id).
        pending = "clipper_frontend_state_pending_log_bytes"
        wait_for(lambda: metric(frontend.metrics(), pending) == 0, what="query logs in Redis")
        for query_id, label in answered:
            body = {"query_id": query_id, "label": label}
            status, answer = post_json(f"{frontend.url}/digits/feedback", body)
            assert status == 200, answer
        text = frontend.metrics()
    for worker in ("0", "1"):
        assert metric(text, REQUESTS, worker=worker, api="clipper", app="digits") > 0
        assert metric(text, "clipper_frontend_feedback_total", worker=worker) > 0
    assert metric(text, "clipper_frontend_feedback_total") == 24
