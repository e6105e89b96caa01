"""The process helpers every live test stands on: ports reported, deaths surfaced."""

from __future__ import annotations

import socket

import pytest

from clipper.testing.model_servers import ModelServer
from clipper.testing.processes import ProcessExited, port_open, refusing_port


def test_a_model_server_binds_free_ports_and_reports_them() -> None:
    with ModelServer.start("noop", name="noop") as server:
        assert server.port > 0
        assert server.metrics_port > 0
        assert server.address == f"127.0.0.1:{server.port}"
        assert port_open(server.port)
        assert "clipper_model" in server.metrics_text()


def test_a_server_that_dies_at_start_fails_at_once_with_its_log() -> None:
    # Were the death taken for "not ready yet", this would be a TimeoutError instead.
    with pytest.raises(ProcessExited) as caught:
        ModelServer.start("sklearn", "/nonexistent/model.joblib", name="broken", timeout=60)
    assert "model server exited with 1" in str(caught.value)
    assert "No such file" in str(caught.value)


def test_a_refusing_port_refuses_connections_while_held() -> None:
    with refusing_port() as port, socket.socket() as client:
        assert client.connect_ex(("127.0.0.1", port)) != 0
