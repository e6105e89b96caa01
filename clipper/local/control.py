"""The control API of a ``clipper run``: what ``clipper apply`` and ``clipper status`` call.

A small HTTP API on 127.0.0.1 (an ephemeral port), JSON both ways, every call
with the run's token (see ``state``):

- ``GET /v1/status``: apps, ModelDeployments with their full status, processes,
  recent rollout events, the frontend's selection weights;
- ``POST /v1/apply`` with ``{"paths": [...]}``: apply the manifests at those
  absolute paths, as ``kubectl apply -f`` would; 200 with what changed, or 422
  with every problem (``file: Kind/name: field: message``) and nothing changed.

The run reads the files itself (the client and the run share the machine), so
relative model paths resolve against the manifest's own folder either way.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from clipper.common.errors import InvalidManifests

log = logging.getLogger(__name__)

StatusFn = Callable[[], Awaitable[dict[str, Any]]]
ApplyFn = Callable[[list[str]], Awaitable[list[str]]]


class ControlServer:
    """The control API over two callbacks of the run."""

    def __init__(self, token: str, status: StatusFn, apply: ApplyFn) -> None:
        self.token = token
        self._status = status
        self._apply = apply
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1") -> str:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/v1/status", self.status)
        app.router.add_post("/v1/apply", self.apply)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        return await handler(request)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(await self._status())

    async def apply(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the body must be JSON"}, status=400)
        paths = body.get("paths") if isinstance(body, dict) else None
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or not paths:
            return web.json_response({"error": '"paths" must be a list of file paths'}, status=400)
        try:
            applied = await self._apply(paths)
        except InvalidManifests as exc:
            errors = [error.message for error in exc.errors]
            return web.json_response({"error": exc.message, "errors": errors}, status=422)
        return web.json_response({"applied": applied})
