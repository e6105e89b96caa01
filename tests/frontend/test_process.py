"""``clipper frontend`` as a process: request ids in logs, SIGTERM drains, bad routes."""

from __future__ import annotations

import json
import signal
import threading
import urllib.request
from pathlib import Path

from clipper.testing.frontend import FrontendProcess, metric, route, write_routes
from clipper.testing.latency import LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.processes import ClipperProcess, wait_for

ROW = [1.0, 2.0, 3.0, 4.0]


def predict(url: str, request_id: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/echo/predict",
        data=json.dumps({"input": ROW}).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, json.loads(answer.read())


def test_sigterm_finishes_requests_in_flight_then_exits_0(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    app = route("echo", {"echo": [echo_server.address]}, latency_slo_ms=10_000)
    write_routes(routes, {**app, "cache": {"enabled": False}})
    frontend = FrontendProcess(routes, env={"CLIPPER_LOG_LEVEL": "DEBUG"}).wait_ready()
    try:
        status, answer = predict(frontend.url, "req-first")
        assert (status, answer["output"]) == (200, ROW)
        wait_for(lambda: "[req-first]" in frontend.process.logs(), what="request id logged")

        latency.set(1.0)
        results: list[tuple[int, dict]] = []
        threads = [
            threading.Thread(target=lambda i=i: results.append(predict(frontend.url, f"r{i}")))
            for i in range(3)
        ]
        for thread in threads:
            thread.start()
        name = "clipper_frontend_batch_size_count"
        wait_for(lambda: metric(frontend.metrics(), name) >= 2, what="a slow batch in flight")
        frontend.process.signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=30)
        assert frontend.process.wait(timeout=30) == 0
    finally:
        frontend.stop()
    assert [status for status, _ in results] == [200, 200, 200]
    assert all(a["output"] == ROW and not a["default"] for _, a in results)
    assert "shutting down" in frontend.process.log_path.read_text()


def test_an_invalid_routes_file_exits_1_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("apps: {a: {latency_slo_ms: -1}}")
    process = ClipperProcess(["frontend", "--routes", str(path), "--http-port", "0"])
    try:
        assert process.wait(timeout=60) == 1
    finally:
        process.stop()
    assert "apps.a.latency_slo_ms" in process.log_path.read_text()
