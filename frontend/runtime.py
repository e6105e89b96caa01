"""A whole frontend in one object: discovery, router, data plane, both servers.

``Frontend`` is what ``clipper frontend`` runs and what tests run in-process
(``async with Frontend(settings) as frontend``). Start-up applies the first
routing table before either server listens, so the first request already sees
every app. Shutdown is graceful and ordered: first ``drain`` (on SIGTERM) keeps
serving for ``drain_delay_s`` with readiness at 503 -- a pod being deleted stays
in its Service's endpoints until every node's proxy has heard, so a frontend that
closed its listeners at once would refuse connections meanwhile; then stop
accepting on both ports, let requests in flight finish within the grace period
(their batches are still being served), then drain the batchers and close the
channels.

A later routing table that cannot be applied (say, a fixed policy naming a
model the app lacks) is rejected whole before anything changes, logged, and the
previous table stays in force; the discovery is told (``Discovery.report``), so
the Kubernetes one can put it on the ClipperApp's status (local mode reads the
log lines: each table is logged as rejected or applied).

The frontend owns one ``TaskRegistry``: every long-lived task (the routing
follower, batchers, health watchers, discovery watches, drains) is started
through ``clipper.common.tasks`` and reports to it. Crashes are counted in
``/metrics`` (``clipper_frontend_task_crashes_total{task}``); a task that died
for good turns ``/readyz`` red, naming it.

The routing follower is restarted when it dies (with a back-off from 0.5 s to
30 s), not left dead: the last table stays in force meanwhile, and a fresh
``Discovery.watch()`` yields the current table first, so a restart misses no
change. Turning readiness red instead would take every frontend out of its
Service at once when discovery breaks for all of them (an API server outage, a
routes directory replaced), turning a stale table into an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from types import TracebackType

from clipper.common.errors import ConfigError
from clipper.common.routing import RoutingTable
from clipper.common.tasks import Backoff, Supervised, TaskRegistry, supervise
from clipper.frontend.dataplane import DataPlane
from clipper.frontend.grpc.native import NativeGrpcServer, WorkerLink, front_program
from clipper.frontend.grpc.server import GrpcLimits, GrpcServer
from clipper.frontend.metrics import Metrics
from clipper.frontend.rest.connections import ConnectionLimits
from clipper.frontend.rest.server import RestServer
from clipper.frontend.routing.discovery import Discovery
from clipper.frontend.routing.discovery.factory import make_discovery
from clipper.frontend.routing.router import Router
from clipper.frontend.settings import FrontendSettings
from clipper.frontend.state import make_state
from clipper.frontend.workers.control import ControlServer, Siblings

log = logging.getLogger(__name__)


class Frontend:
    def __init__(self, settings: FrontendSettings, discovery: Discovery | None = None) -> None:
        self.settings = settings
        self.tasks = TaskRegistry()
        self.metrics = Metrics()
        self.metrics.watch_tasks(self.tasks)
        self.router = Router(settings, self.metrics, self.tasks)
        self.state = make_state(settings)
        self.router.on_inherit = self.state.inherited
        self.plane = DataPlane(self.router, self.state, self.tasks)
        log_max = settings.query_log_max_bytes if self.state.shared else settings.feedback_max_bytes
        self.metrics.watch_feedback(self.state.log_stats, log_max)
        self.metrics.watch_state(self.state.stats)
        self.discovery = discovery or make_discovery(settings, self.tasks)
        siblings = None
        if settings.worker is not None and settings.worker_group is not None:
            siblings = Siblings(settings.worker_group, settings.worker, settings.workers)
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
            self._http_socket(),
            siblings,
        )
        self.grpc = self._grpc_server(settings, siblings is not None)
        self.control: ControlServer | None = None
        """A worker's control socket (``--workers``): its siblings ask it for its
        metrics and readiness."""
        if siblings is not None and settings.worker_group is not None:
            self.control = ControlServer(
                settings.worker_group,
                siblings.index,
                self.metrics.exposition,
                self.rest.routes.readiness,
            )
        self._tables: AsyncIterator[RoutingTable] | None = None
        self._follower: Supervised | None = None
        self._listening = False

    def _grpc_server(
        self, settings: FrontendSettings, worker: bool
    ) -> GrpcServer | NativeGrpcServer | WorkerLink:
        """grpc.aio, or the native front (``--grpc-server``; ``grpc/native.py``). A worker
        is told which by its supervisor, which runs the front for every worker."""
        limits = GrpcLimits.of(settings)
        if worker and settings.grpc_server == "native":
            assert settings.worker_group is not None
            assert settings.worker is not None
            return WorkerLink(
                self.plane,
                self.metrics,
                settings.grpc_port,
                limits,
                settings.worker_group,
                settings.worker,
            )
        reuse_port = settings.grpc_reuse_port or worker
        args = (
            self.plane,
            self.metrics,
            settings.host,
            settings.grpc_port,
            settings.max_body_bytes,
        )
        program = None if worker else front_program(settings.grpc_server)
        if program is not None:
            return NativeGrpcServer(
                program, *args, limits, reuse_port, self.tasks, settings.grace_period_s
            )
        return GrpcServer(*args, limits, reuse_port)

    def _http_socket(self) -> socket.socket | None:
        """The inherited REST listener (``--http-fd``), if the supervisor passed one."""
        fd = self.settings.http_fd
        return None if fd is None else socket.socket(fileno=fd)

    async def start(self) -> None:
        """Apply the first routing table, then listen on both ports."""
        self._tables = aiter(self.discovery.watch())
        try:
            self.router.apply(await anext(self._tables))
        except ConfigError as exc:
            await self.discovery.report(str(exc))
            raise
        await self.discovery.report(None)
        await self.state.start(lambda: self.router.apps, self.tasks)
        self._follower = supervise(
            "routing_follower",
            self._follow,
            registry=self.tasks,
            backoff=Backoff(first_s=0.5, max_s=30.0, healthy_after_s=60.0),
        )
        self._listening = True
        await self.rest.start()
        await self.grpc.start()
        if self.control is not None:
            await self.control.start()
        log.info(
            "frontend serving REST on %s:%d and gRPC on %s:%d",
            self.settings.host,
            self.rest.port,
            self.settings.host,
            self.grpc.port,
        )

    async def drain(self, cut_short: asyncio.Event | None = None) -> None:
        """Fail readiness and keep serving for ``drain_delay_s`` (less if ``cut_short``
        is set meanwhile), so load balancers stop sending before ``stop`` closes the ports."""
        self.plane.draining = True
        if self._listening:
            await self.grpc.drain()
        delay = self.settings.drain_delay_s
        if delay <= 0 or (cut_short is not None and cut_short.is_set()):
            return
        log.info("draining: /readyz answers 503; still serving for %gs", delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for((cut_short or asyncio.Event()).wait(), delay)

    async def stop(self) -> None:
        """Stop accepting, finish what is in flight, close every replica channel."""
        if self._follower is not None:
            await self._follower.stop()
        close = getattr(self._tables, "aclose", None)  # stopped before the follower ran
        if close is not None:
            await close()
        if self.control is not None:
            await self.control.stop()
        if self._listening:
            grace = self.settings.grace_period_s
            await asyncio.gather(self.rest.stop(), self.grpc.stop(grace))
        await self.router.close()
        await self.state.close()
        log.info("frontend stopped")

    async def _follow(self) -> None:
        """Apply each new table; after a restart, from a fresh watch (current table first)."""
        tables, self._tables = self._tables, None
        if tables is None:
            tables = aiter(self.discovery.watch())
        try:
            async for table in tables:
                try:
                    self.router.apply(table)
                except ConfigError as exc:
                    log.error("routing table rejected, the previous one stays: %s", exc)
                    await self.discovery.report(str(exc))
                else:
                    await self.discovery.report(None)
        finally:
            close = getattr(tables, "aclose", None)
            if close is not None:
                await close()

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
