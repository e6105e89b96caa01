"""A routing table that cannot be applied is rejected whole; the last one serves on."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from clipper.testing.frontend import hammer, route, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.waiting import polls

ROW = [1.0, 2.0, 3.0, 4.0]


async def test_a_bad_update_is_rejected_and_a_good_one_applied(
    routes: Path, echo_server: ModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    good = route("echo", {"echo": [echo_server.address]}, latency_slo_ms=1000)
    write_routes(routes, good)
    async with serving(routes) as fe:
        app = fe.frontend.router.apps["echo"]
        with caplog.at_level(logging.ERROR):
            write_routes(routes, {**good, "selection": {"type": "exp3", "params": {"gama": 1}}})
            async for _ in polls(10):
                if "routing table rejected" in caplog.text:
                    break
        assert "apps.echo.selection" in caplog.text
        assert "gama" in caplog.text
        assert fe.frontend.router.apps["echo"] is app
        assert app.config.selection.type == "exp3"
        assert app.config.selection.params == {}
        ((status, answer),) = await hammer(fe.url, "echo", [ROW], concurrency=1)
        assert (status, answer["output"]) == (200, ROW)

        write_routes(routes, {**good, "latency_slo_ms": 250})
        async for _ in polls(10):
            if app.config.latency_slo_ms == 250:
                break
        assert app.slo_s == 0.25
