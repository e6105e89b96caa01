"""``clipper model health``: the probe a Docker HEALTHCHECK or an exec probe runs."""

from __future__ import annotations

import subprocess
import sys

from clipper.testing.model_servers import ModelServer
from clipper.testing.processes import refusing_port
from clipper.testing.timeouts import scaled


def health(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "clipper", "model", "health", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=scaled(60), check=False)


def test_a_serving_container_is_healthy(digits_logistic_server: ModelServer) -> None:
    result = health("--port", str(digits_logistic_server.port))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("SERVING")


def test_nothing_listening_is_unhealthy() -> None:
    with refusing_port() as port:
        result = health("--port", str(port), "--timeout-s", "1")
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stdout or "DEADLINE_EXCEEDED" in result.stdout
