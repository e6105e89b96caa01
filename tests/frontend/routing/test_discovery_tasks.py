"""The Kubernetes discovery's watches leave nothing behind when it is stopped.

No control plane needed: the API server address refuses connections, so the
reflectors keep backing off while the frontend waits for the first table; the
frontend is stopped (cancelled) meanwhile, as on a SIGTERM during start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from kubernetes_asyncio import client

from clipper.common.tasks import TaskRegistry
from clipper.frontend.routing.discovery.kubernetes import KubernetesDiscovery
from clipper.testing.asyncio_checks import unretrieved_task_errors
from clipper.testing.processes import refusing_port
from clipper.testing.waiting import polls


async def test_a_cancelled_watch_stops_its_reflectors_and_leaks_no_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with refusing_port() as port:  # connections refused, and no one else listens there
        refused = client.Configuration(host=f"http://127.0.0.1:{port}")
        tasks = TaskRegistry()
        discovery = KubernetesDiscovery("app", "ns", configuration=refused, tasks=tasks)

        async def follow() -> None:
            async for _ in discovery.watch():
                raise AssertionError("no table can come from a refused connection")

        with caplog.at_level(logging.WARNING):
            follower = asyncio.create_task(follow())
            async for _ in polls(10):  # every reflector has tried once
                if caplog.text.count("listing again") >= 3:
                    break
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            assert follower.cancelled()
            async for _ in polls(5):  # what it cancelled on its way out finishes too
                left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not left:
                    break
            errors = unretrieved_task_errors(caplog)
    assert left == []
    assert errors == []
    assert tasks.crashes == {}
