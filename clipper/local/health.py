"""How the runner knows a child is ready: the same probes Kubernetes would use.

A model server is ready when ``grpc.health.v1`` says SERVING (its readiness
probe in a cluster). The runner *watches* the health service -- one streaming
call per replica -- instead of polling it, so a model that finishes loading, or
starts draining, is seen at once. The frontend is ready when
``GET /v2/health/ready`` answers 200; it is polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
RETRY_S = 0.2


async def watch_serving(address: str, report: Callable[[bool], None]) -> None:
    """Report each SERVING / not-SERVING change of the model server at ``address``.

    Runs until cancelled; a broken stream (the server restarting, not listening
    yet) reports not serving and is reopened after a short pause.
    """
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                call = stub.Watch(health_pb2.HealthCheckRequest(service=""))
                async for reply in call:
                    report(reply.status == SERVING)
            except grpc.aio.AioRpcError as exc:
                log.debug("health watch of %s: %s", address, exc.code().name)
            report(False)
            await asyncio.sleep(RETRY_S)


async def http_ready(session: aiohttp.ClientSession, url: str) -> tuple[bool, bool]:
    """``(live, ready)`` of a frontend, from ``/v2/health/ready`` at ``url``."""
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with session.get(f"{url}/v2/health/ready", timeout=aiohttp.ClientTimeout(2)) as r:
            return True, r.status == 200
    return False, False
