"""``/readyz`` turns red, naming the task, when a long-lived task died for good.

Tasks of the frontend that cannot be restarted report to its one
``TaskRegistry`` (``clipper.common.tasks.supervise(..., restart=False)``); the
readiness probe then takes the frontend out of its Service, and ``/metrics``
counts the crash.
"""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from clipper.common.tasks import supervise
from clipper.testing.asyncio_checks import unretrieved_task_errors
from clipper.testing.frontend import metric, route, serving, write_routes
from clipper.testing.model_servers import ModelServer


async def test_a_task_dead_for_good_turns_readyz_red_and_names_it(
    routes: Path, echo_server: ModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise RuntimeError("state is corrupt")

    write_routes(routes, route("echo", {"echo": [echo_server.address]}))
    with caplog.at_level(logging.WARNING):
        async with serving(routes) as fe, aiohttp.ClientSession() as http:
            async with http.get(f"{fe.url}/readyz") as r:
                assert (r.status, await r.json()) == (200, {"ready": True})
            task = supervise("cache_sweeper", broken, registry=fe.frontend.tasks, restart=False)
            await task.wait()
            async with http.get(f"{fe.url}/readyz") as r:
                status, body = r.status, await r.json()
            text = fe.metrics()
        errors = unretrieved_task_errors(caplog)
    assert status == 503
    assert body == {
        "ready": False,
        "failed_tasks": {"cache_sweeper": "RuntimeError: state is corrupt"},
    }
    assert metric(text, "clipper_frontend_task_crashes_total", task="cache_sweeper") == 1
    assert errors == []
