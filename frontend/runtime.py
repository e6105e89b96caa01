"""A whole frontend in one object: discovery, router, data plane, both servers.

``Frontend`` is what ``clipper frontend`` runs and what tests run in-process
(``async with Frontend(settings) as frontend``). Start-up applies the first
routing table before either server listens, so the first request already sees
every app. Shutdown is graceful and ordered: stop accepting on both ports,
let requests in flight finish within the grace period (their batches are
still being served), then drain the batchers and close the channels.

A later routing table that cannot be applied (say, an unknown policy
parameter) is rejected whole before anything changes, logged, and the previous
table stays in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from types import TracebackType

from clipper.common.errors import ConfigError
from clipper.common.routing import RoutingTable
from clipper.frontend.dataplane import DataPlane
from clipper.frontend.grpc.server import GrpcLimits, GrpcServer
from clipper.frontend.metrics import Metrics
from clipper.frontend.rest.connections import ConnectionLimits
from clipper.frontend.rest.server import RestServer
from clipper.frontend.routing.discovery import Discovery
from clipper.frontend.routing.discovery.factory import make_discovery
from clipper.frontend.routing.router import Router
from clipper.frontend.settings import FrontendSettings

log = logging.getLogger(__name__)


class Frontend:
    def __init__(self, settings: FrontendSettings, discovery: Discovery | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.router = Router(settings, self.metrics)
        self.plane = DataPlane(self.router, settings.feedback_max_bytes, settings.seed)
        self.metrics.watch_feedback(self.plane.store.stats, settings.feedback_max_bytes)
        self.discovery = discovery or make_discovery(settings)
        self.rest = RestServer(
            self.plane,
            self.metrics,
            settings.host,
            settings.http_port,
            settings.max_body_bytes,
            settings.grace_period_s,
            ConnectionLimits(
                settings.header_timeout_s,
                settings.body_timeout_s,
                settings.keepalive_timeout_s,
                settings.max_connections,
            ),
        )
        self.grpc = GrpcServer(
            self.plane,
            self.metrics,
            settings.host,
            settings.grpc_port,
            settings.max_body_bytes,
            GrpcLimits(
                settings.grpc_max_concurrent_rpcs,
                settings.header_timeout_s,
                settings.keepalive_timeout_s,
            ),
        )
        self._follow_task: asyncio.Task[None] | None = None
        self._listening = False

    async def start(self) -> None:
        """Apply the first routing table, then listen on both ports."""
        tables = aiter(self.discovery.watch())
        self.router.apply(await anext(tables))
        self._follow_task = asyncio.get_running_loop().create_task(self._follow(tables))
        self._listening = True
        await self.rest.start()
        await self.grpc.start()
        log.info(
            "frontend serving REST on %s:%d and gRPC on %s:%d",
            self.settings.host,
            self.rest.port,
            self.settings.host,
            self.grpc.port,
        )

    async def stop(self) -> None:
        """Stop accepting, finish what is in flight, close every replica channel."""
        if self._follow_task is not None:
            self._follow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow_task
        if self._listening:
            grace = self.settings.grace_period_s
            await asyncio.gather(self.rest.stop(), self.grpc.stop(grace))
        await self.router.close()
        log.info("frontend stopped")

    async def _follow(self, tables: AsyncIterator[RoutingTable]) -> None:
        async for table in tables:
            try:
                self.router.apply(table)
            except ConfigError as exc:
                log.error("routing table rejected, the previous one stays: %s", exc)

    async def __aenter__(self) -> Frontend:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
