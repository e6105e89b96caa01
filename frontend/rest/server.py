"""The REST server: every REST route on one port, on aiohttp's low-level server.

Routing is a dictionary lookup on the path's segments rather than aiohttp's
URL dispatcher: with a handful of fixed shapes (``/v2/...``,
``/v2/models/{app}/...``, ``/{app}/predict``, ``/{app}/feedback``, ``/metrics``,
``/readyz``, ``/v1/stats/versions``) that is exact and costs a ``split`` instead of a regular
expression per route, which mattered in profiles. ``/v2/...``, ``/metrics`` and
``/readyz`` (the frontend can take queries: its routing table is loaded and no
long-lived task died for good; a 503 body names the dead ones) are
matched first, so they always mean what they say. Unknown paths get 404 and
wrong methods 405, both with a JSON ``{"error": ...}`` body.

Connections are bounded in time and number (``connections.py``): header and
body timeouts, an idle timeout, at most ``max_connections`` open (503 past it),
and the HTTP parser's own errors answered in JSON like every other error.

The access log is off (a line per request would cost more than serving a
cached prediction); requests are visible through metrics, and DEBUG logs carry
request ids. Shutdown is graceful: ``stop`` closes the listening socket, then
gives requests in flight up to the grace period to finish. While the frontend
drains (before that), every answer closes its connection, so keep-alive clients
reconnect to a frontend that stays. An inherited listening socket (``sock``)
serves instead of binding a port: closing it here leaves it open in the process
that passed it, so connections wait in its backlog for the next frontend.
"""

from __future__ import annotations

import socket

import orjson
from aiohttp import web

from clipper.frontend.dataplane import DataPlane
from clipper.frontend.metrics import CONTENT_TYPE, Metrics
from clipper.frontend.rest.clipper_api import ClipperApi
from clipper.frontend.rest.connections import (
    ConnectionLimits,
    Server,
    raise_open_files_limit,
    usable_connections,
)
from clipper.frontend.rest.http import Handler, endpoint, json_response
from clipper.frontend.rest.oip_api import OipApi
from clipper.frontend.workers.control import Siblings
from clipper.frontend.workers.merge import merge_expositions


class Routes:
    """Which handler serves a method and path, and for which app."""

    def __init__(
        self,
        plane: DataPlane,
        metrics: Metrics,
        max_body_bytes: int,
        siblings: Siblings | None = None,
    ) -> None:
        self.metrics = metrics
        self.siblings = siblings
        """The other workers of this pod (``--workers``), answered for in a scrape."""
        server, model = OipApi(plane, metrics, max_body_bytes).routes()
        self.plane = plane
        self.get = {
            **server,
            "/metrics": endpoint("metrics", metrics, self.scrape),
            "/readyz": endpoint("readyz", metrics, self.readyz),
            "/v1/stats/versions": endpoint("stats", metrics, self.version_stats),
        }
        self.model = model
        self.app_post = ClipperApi(plane, metrics, max_body_bytes).routes()

    async def scrape(self, request: web.BaseRequest, _: str) -> web.Response:
        body = self.metrics.exposition()
        if self.siblings is not None:
            others = await self.siblings.ask(b"metrics")
            body = merge_expositions({self.siblings.index: body, **others})
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    def readiness(self) -> dict[str, object]:
        """This process's readiness: ``{"ready": bool[, "failed_tasks": {...}]}``."""
        body: dict[str, object] = {"ready": self.plane.accepting}
        if failed := self.plane.failed_tasks:
            body["failed_tasks"] = failed
        if self.plane.state.shared:  # shown, never failing readiness: serving goes on
            body["state_backend"] = self.plane.state.stats().report()
        return body

    async def readyz(self, request: web.BaseRequest, _: str) -> web.Response:
        """With ``--workers``: ready when this worker and every sibling is, once every
        sibling has started (``workers/control.py`` says why a worker being
        restarted does not count)."""
        body = self.readiness()
        if self.siblings is not None:
            replies = await self.siblings.ask(b"ready")
            workers = {self.siblings.index: dict(body)}
            workers |= {i: orjson.loads(reply) for i, reply in replies.items()}
            workers |= {i: {"ready": False, "starting": True} for i in self.siblings.starting()}
            body["ready"] = all(worker.get("ready") for worker in workers.values())
            body["workers"] = {str(i): workers[i] for i in sorted(workers)}
        return json_response(body, 200 if body["ready"] else 503)

    async def version_stats(self, request: web.BaseRequest, _: str) -> web.Response:
        """Per-version counters for rollout analysis (``clipper.frontend.version_stats``)."""
        document = self.plane.version_stats.snapshot()
        document["shadows"] = self.plane.mirror.snapshot()  # Shadow rollouts' paired counts
        # The operator's StateBackendReachable condition (clipper.common.state_condition)
        document["state_backend"] = self.plane.state.stats().report()
        return json_response(document)

    def resolve(self, method: str, path: str) -> tuple[Handler, str] | web.Response:
        handler = self.get.get(path)
        if handler is not None:
            return (handler, "") if method in ("GET", "HEAD") else _not_allowed(method, path)
        parts = path.split("/")
        if len(parts) == 3 and parts[1] and parts[2] in self.app_post:
            if method != "POST":
                return _not_allowed(method, path)
            return self.app_post[parts[2]], parts[1]
        if 4 <= len(parts) <= 5 and parts[1] == "v2" and parts[2] == "models" and parts[3]:
            action = parts[4] if len(parts) == 5 else ""
            handler = self.model.get((method, action))
            if handler is not None:
                return handler, parts[3]
            if any(a == action for _, a in self.model):
                return _not_allowed(method, path)
        self.metrics.error("rest", "404")
        return json_response({"error": f"no route for {method} {path}"}, 404)


def _not_allowed(method: str, path: str) -> web.Response:
    return json_response({"error": f"{method} is not allowed on {path}"}, 405)


class RestServer:
    def __init__(
        self,
        plane: DataPlane,
        metrics: Metrics,
        host: str,
        port: int,
        max_body_bytes: int,
        grace_period_s: float,
        limits: ConnectionLimits | None = None,
        sock: socket.socket | None = None,
        siblings: Siblings | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.sock = sock
        """An inherited listening socket to serve on instead of binding ``port``."""
        self.reuse_port = siblings is not None
        """A worker of several (``--workers``) binds ``port`` with SO_REUSEPORT."""
        self.routes = Routes(plane, metrics, max_body_bytes, siblings)
        self.metrics = metrics
        self.limits = limits or ConnectionLimits()
        self._grace_period_s = grace_period_s
        self._runner: web.ServerRunner | None = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        route = self.routes.resolve(request.method, request.path)
        if isinstance(route, web.Response):
            return route
        handler, app = route
        response = await handler(request, app)
        if self.routes.plane.draining:  # move keep-alive clients to a frontend that stays
            response.force_close()
        return response

    async def start(self) -> None:
        server = Server(
            self._handle, self.limits, self.metrics, access_log=None, max_field_size=65536
        )
        server.max_connections = usable_connections(
            self.limits.max_connections, raise_open_files_limit()
        )
        self.metrics.watch_connections(lambda: len(server.connections), server.max_connections)
        self._runner = web.ServerRunner(server, shutdown_timeout=self._grace_period_s)
        await self._runner.setup()
        site: web.BaseSite
        if self.sock is not None:
            site = web.SockSite(self._runner, self.sock)
            self.host, self.port = self.sock.getsockname()[:2]
        else:
            site = web.TCPSite(
                self._runner, self.host, self.port, backlog=1024, reuse_port=self.reuse_port or None
            )
        await site.start()
        if self.port == 0:  # an ephemeral port: report the one the OS chose
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop accepting, then let requests in flight finish (up to the grace period)."""
        if self._runner is not None:
            await self._runner.cleanup()
