"""A model container's life: listen, load, serve, drain on SIGTERM, exit.

The gRPC port opens *before* the model loads, with ``grpc.health.v1`` saying
NOT_SERVING and ``ServerReady`` false, so probes see a live process that is
loading rather than a closed port; ModelInfer answers UNAVAILABLE until the
model is ready. A model that fails to load ends the process with exit code 1
and one ERROR line saying why (the traceback only at DEBUG).

SIGTERM (or SIGINT) drains:

1. health turns NOT_SERVING and ServerReady false, so a frontend or load
   balancer stops routing here;
2. for ``drain_delay_s`` new requests are still served, while routers catch up;
3. the server stops accepting calls; calls in flight finish, for at most
   ``grace_period_s``;
4. once the last inference has been delivered, long-lived calls such as
   health watches are cut, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from clipper.common.errors import ClipperError, ConfigError
from clipper.common.protocol import pb_grpc
from clipper.model_wrappers.dataplane import DataPlane
from clipper.model_wrappers.metrics import ModelMetrics
from clipper.model_wrappers.registry import create_model
from clipper.model_wrappers.servicer import InferenceServicer
from clipper.model_wrappers.settings import ModelSettings, ServerSettings

log = logging.getLogger(__name__)

OIP_SERVICE = "inference.GRPCInferenceService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def grpc_options(settings: ServerSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),  # a port in use is an error, not a shared port
    ]


HEALTH_HEADROOM = 4
"""RPCs kept free above the batches a server admits: the kubelet's probes, the
frontend's health watch and metadata calls must not be refused by gRPC's bound
before the admission bound refuses inference calls."""


def check_bounds(model_settings: ModelSettings, settings: ServerSettings) -> None:
    """gRPC's RPC bound must sit above the batches admitted, or probes are refused first."""
    admitted = model_settings.max_concurrency + settings.max_queued_batches
    if settings.max_concurrent_rpcs < admitted + HEALTH_HEADROOM:
        raise ConfigError(
            f"--max-concurrent-rpcs {settings.max_concurrent_rpcs} leaves no room for health"
            f" checks above --max-concurrency {model_settings.max_concurrency} plus"
            f" --max-queued-batches {settings.max_queued_batches}: make it at least"
            f" {admitted + HEALTH_HEADROOM}",
            location="max_concurrent_rpcs",
        )


class ModelServer:
    """The gRPC server, health service and metrics of one model version."""

    def __init__(self, model_settings: ModelSettings, settings: ServerSettings) -> None:
        self.settings = settings
        check_bounds(model_settings, settings)
        self.metrics = ModelMetrics()
        model = create_model(model_settings)
        self.plane = DataPlane(model, self.metrics, settings.max_queued_batches)
        self.servicer = InferenceServicer(self.plane)
        self.health = health_aio.HealthServicer()
        self.server = grpc.aio.server(
            options=grpc_options(settings), maximum_concurrent_rpcs=settings.max_concurrent_rpcs
        )
        self.metrics.max_concurrent_rpcs.set(settings.max_concurrent_rpcs)
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.stop_requested = asyncio.Event()
        self.port = settings.port

    @property
    def describe(self) -> str:
        s = self.plane.model.settings
        return f"model '{s.name}' version '{s.version}' ({s.framework}, uri '{s.uri}')"

    async def start(self) -> None:
        """Listen on the gRPC (and metrics) port, reporting NOT_SERVING."""
        self._handle_signals()  # before the port opens: a probe-driven SIGTERM can come at once
        host = self.settings.host
        self.port = self.server.add_insecure_port(f"{host}:{self.settings.port}")
        await self._set_health(NOT_SERVING)
        await self.server.start()
        metrics_port = self.settings.metrics_port  # -1: any free port, reported below
        if metrics_port:
            metrics_port = self.metrics.serve(host, max(metrics_port, 0))
        log.info("listening on %s:%d (metrics port %s)", host, self.port, metrics_port or "off")

    async def load(self) -> None:
        await self.plane.load()
        await self._set_health(SERVING)
        signature = self.plane.model.signature
        log.info(
            "serving %s on %s; inputs: %s; outputs: %s; properties: %s",
            self.describe,
            self.port,
            ", ".join(spec.describe() for spec in signature.inputs) or "any",
            ", ".join(spec.describe() for spec in signature.outputs) or "unknown",
            self.plane.model.properties,
        )

    async def drain(self) -> None:
        """Stop routing here, finish what is in flight, then stop."""
        calls = self.servicer.calls
        log.info("draining: %d inference calls in flight", calls.count)
        self.plane.drain()
        await self.health.enter_graceful_shutdown()
        if self.settings.drain_delay_s > 0:
            await asyncio.sleep(self.settings.drain_delay_s)
        stopping = asyncio.create_task(self.server.stop(self.settings.grace_period_s))
        try:
            await asyncio.wait_for(calls.idle.wait(), self.settings.grace_period_s)
        except TimeoutError:
            log.warning("grace period over: cancelling %d inference calls", calls.count)
        await self.server.stop(0)  # cuts what is left, such as health watches
        await stopping
        log.info("stopped")

    async def run(self) -> int:
        """Listen, load, serve until SIGTERM, drain; the exit code."""
        try:
            await self.start()
        except (RuntimeError, OSError) as exc:  # the port is taken, the host is wrong
            log.error("cannot serve %s: %s", self.describe, _reason(exc))
            await self.server.stop(0)
            return 1
        if not await self._load_unless_stopped():
            await self.server.stop(0)
            return 0 if self.stop_requested.is_set() else 1
        await self.stop_requested.wait()
        await self.drain()
        return 0

    async def _load_unless_stopped(self) -> bool:
        loading = asyncio.create_task(self.load())
        stopping = asyncio.create_task(self.stop_requested.wait())
        await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not loading.done():
            log.info("stopped while loading %s", self.describe)
            loading.cancel()
            return False
        if exc := loading.exception():
            log.error("failed to load %s: %s", self.describe, _reason(exc))
            log.debug("load failure", exc_info=exc)
            return False
        return True

    async def _set_health(self, status: int) -> None:
        for service in ("", OIP_SERVICE):
            await self.health.set(service, status)

    def _handle_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        log.info("received %s", signal.Signals(signum).name)
        self.stop_requested.set()


async def serve(model_settings: ModelSettings, settings: ServerSettings) -> int:
    """Run a model container until SIGTERM; the process's exit code."""
    try:
        server = ModelServer(model_settings, settings)
    except ConfigError as exc:  # flags that contradict each other
        log.error("invalid flags: %s", exc.message)
        return 2
    except ClipperError as exc:  # e.g. the framework's package is not installed
        log.error("cannot serve model '%s': %s", model_settings.name, exc.message)
        return 1
    try:
        return await server.run()
    finally:
        await server.plane.model.close()


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ClipperError) else f"{type(exc).__name__}: {exc}"
