"""The gRPC server: OIP V2 and ``grpc.health.v1`` on their own port.

The health service reports SERVING while the frontend serves and NOT_SERVING
from the moment shutdown starts, so gRPC-aware load balancers stop sending new
calls while calls in flight get the grace period to finish.

Clients are bounded as on the REST port, with what ``grpc.aio`` offers: at
most ``grpc_max_concurrent_rpcs`` calls at once (RESOURCE_EXHAUSTED past it,
before any work), an HTTP/2 handshake within ``header_timeout_s``, idle
connections closed (GOAWAY) after ``keepalive_timeout_s``, and keepalive pings
that close connections to clients that vanished. ``grpc.aio`` has no bound on
open connections; with the handshake and idle timeouts they cannot linger, and
their file descriptors come out of the reserve the REST bound leaves. A
ModelStreamInfer stream is one call however many requests it carries; each
stream holds at most ``grpc_stream_max_inflight`` of them in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from clipper.common.protocol import pb_grpc
from clipper.frontend.dataplane import DataPlane
from clipper.frontend.grpc.servicer import InferenceServicer
from clipper.frontend.metrics import Metrics
from clipper.frontend.settings import FrontendSettings

KEEPALIVE_TIME_MS = 60_000
"""Ping a connection with no traffic for a minute, to find clients that vanished."""
KEEPALIVE_TIMEOUT_MS = 20_000
"""Close a connection whose ping is not answered within 20 s."""


@dataclass(frozen=True, slots=True)
class GrpcLimits:
    """The gRPC server's bounds (from ``FrontendSettings``)."""

    max_concurrent_rpcs: int = 4096
    handshake_timeout_s: float = 10.0
    idle_timeout_s: float = 75.0
    stream_max_inflight: int = 64
    """Requests in flight on one ModelStreamInfer stream (``streams.py``)."""

    @classmethod
    def of(cls, settings: FrontendSettings) -> GrpcLimits:
        return cls(
            settings.grpc_max_concurrent_rpcs,
            settings.header_timeout_s,
            settings.keepalive_timeout_s,
            settings.grpc_stream_max_inflight,
        )


class GrpcServer:
    def __init__(
        self,
        plane: DataPlane,
        metrics: Metrics,
        host: str,
        port: int,
        max_message_bytes: int,
        limits: GrpcLimits | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.host, self.port = host, port
        limits = limits or GrpcLimits()
        metrics.grpc_max_concurrent_rpcs.set(limits.max_concurrent_rpcs)
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", int(reuse_port)),
                ("grpc.server_handshake_timeout_ms", int(limits.handshake_timeout_s * 1000)),
                ("grpc.max_connection_idle_ms", int(limits.idle_timeout_s * 1000)),
                ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
                ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
            ],
            maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
        )
        self._servicer = InferenceServicer(plane, metrics, limits.stream_max_inflight)
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(self._servicer, self._server)
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)

    async def start(self) -> None:
        self.port = self._server.add_insecure_port(f"{self.host}:{self.port}")
        await self._server.start()
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def drain(self) -> None:
        """NOT_SERVING while still serving: the frontend is draining before it stops."""
        await self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)

    async def stop(self, grace_s: float) -> None:
        """NOT_SERVING, stop accepting calls, let those in flight finish within ``grace_s``;
        ModelStreamInfer streams answer what they have read and end UNAVAILABLE."""
        await self._health.enter_graceful_shutdown()
        self._servicer.streams.close()
        await self._server.stop(grace_s)
