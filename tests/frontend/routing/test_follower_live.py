"""The routing follower survives its discovery dying, and follows again.

A real cause: the routes file's directory is removed and made again (a project
directory checked out afresh, a volume remounted). The watch on the old
directory can never report anything again; before, the frontend kept its last
table and silently stopped following the file. Now the static discovery raises,
the supervised follower logs it with its traceback, keeps the last table in
force (``/readyz`` stays green: the frontend still answers) and restarts the
watch, which reads the file again once it is back.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import aiohttp
import pytest

from clipper.testing.asyncio_checks import unretrieved_task_errors
from clipper.testing.frontend import hammer, metric, route, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.waiting import polls

ROW = [1.0, 2.0, 3.0, 4.0]
CRASHES = "clipper_frontend_task_crashes_total"


async def test_the_follower_restarts_when_the_routes_directory_is_replaced(
    tmp_path: Path, echo_server: ModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    routes = conf / "routes.yaml"
    app = route("echo", {"echo": [echo_server.address]}, latency_slo_ms=1000)
    write_routes(routes, app)
    with caplog.at_level(logging.WARNING):
        async with serving(routes) as fe, aiohttp.ClientSession() as http:
            shutil.rmtree(conf)
            async for _ in polls(20):
                if metric(fe.metrics(), CRASHES, task="routing_follower") >= 1:
                    break
            else:
                raise TimeoutError("the follower never noticed the directory was removed")
            # Meanwhile the last table serves on, and the frontend stays in its Service.
            async with http.get(f"{fe.url}/readyz") as r:
                assert (r.status, await r.json()) == (200, {"ready": True})
            ((status, answer),) = await hammer(fe.url, "echo", [ROW], concurrency=1)
            assert (status, answer["output"]) == (200, ROW)

            conf.mkdir()
            write_routes(routes, {**app, "latency_slo_ms": 250})
            echo = fe.frontend.router.apps["echo"]
            async for _ in polls(30):  # restarts back off from 0.5 s
                if echo.slo_s == 0.25:
                    break
            assert echo.slo_s == 0.25
        errors = unretrieved_task_errors(caplog)
    died = [r for r in caplog.records if r.getMessage().startswith("task routing_follower died")]
    assert died
    assert died[0].exc_info is not None
    assert "directory was removed or replaced" in died[0].getMessage()
    assert errors == []
