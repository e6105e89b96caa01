"""The gRPC server: OIP V2 and ``grpc.health.v1`` on their own port.

The health service reports SERVING while the frontend serves and NOT_SERVING
from the moment shutdown starts, so gRPC-aware load balancers stop sending new
calls while calls in flight get the grace period to finish.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from clipper.common.protocol import pb_grpc
from clipper.frontend.dataplane import DataPlane
from clipper.frontend.grpc.servicer import InferenceServicer
from clipper.frontend.metrics import Metrics


class GrpcServer:
    def __init__(
        self, plane: DataPlane, metrics: Metrics, host: str, port: int, max_message_bytes: int
    ) -> None:
        self.host, self.port = host, port
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
            ]
        )
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(plane, metrics), self._server
        )
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)

    async def start(self) -> None:
        self.port = self._server.add_insecure_port(f"{self.host}:{self.port}")
        await self._server.start()
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float) -> None:
        """NOT_SERVING, stop accepting calls, let those in flight finish within ``grace_s``."""
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace_s)
