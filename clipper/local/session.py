"""One ``clipper run``, from start-up to the last child reaped.

Start-up, in an order that makes every failure clear and cheap: the manifests
were validated (models included) before this runs; the frontend's ports are
checked free; the frontend starts on an initial routes file (apps, no replicas
yet); the reconcile loop starts the model servers; the control API opens and
the run is published for ``clipper apply``/``status``; the manifests are
watched. The run is *up* when every ModelDeployment has a stable version and
the frontend is ready; then the endpoints are printed. A model that cannot
start (its server exits before it is ready, or misses its progress deadline),
or a frontend that exits, ends the start-up with exit code 1 and the reason --
nothing hangs, nothing is left running.

After start-up a frontend that exits is restarted (with the back-off every child
gets, ``clipper.local.restarts``), and model servers are kept by the supervisor and
the rollout. The run, not the frontend, holds the REST listening socket: each
frontend inherits it, so while a frontend is restarted or replaced connections
wait in its backlog rather than being refused. When an apply changes the first
ClipperApp's ``spec.frontend`` settings, the frontend is replaced as a Deployment
would be with ``maxSurge: 1, maxUnavailable: 0``: the new one starts beside the
old one (the same REST socket; gRPC bound with SO_REUSEPORT), and once it serves
every replica the old one gets SIGTERM and drains -- no request fails. A new one
that never gets ready is stopped and the old one keeps serving.

Every long-lived task of the run (the reconcile loop, the manifest watch, the
frontend's keeper, each child's log pump and health watch) is supervised
(``clipper.common.tasks``) and reports to the run's ``TaskRegistry``: a task that
dies is logged with its traceback and restarted, and ``clipper status`` (the
control API's ``tasks``) shows how often each one crashed.

Shutdown, on SIGINT, SIGTERM or SIGHUP: stop taking applies, stop the frontend
first (it finishes the requests in flight), then every model server (SIGTERM,
SIGKILL after the grace period), then remove the run's folder. A second signal
kills every child at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from clipper.common import api
from clipper.common.app_status import app_status
from clipper.common.errors import ConfigError
from clipper.common.frontend_args import frontend_flags
from clipper.common.manifests import Manifests
from clipper.common.state_condition import set_state_condition
from clipper.common.tasks import Supervised, TaskRegistry, supervise
from clipper.local import ports, status
from clipper.local.applier import Applier
from clipper.local.control import ControlServer
from clipper.local.fleet import FleetReader
from clipper.local.frontend_process import FrontendProcess
from clipper.local.process import LogSink
from clipper.local.restarts import RestartPolicy, restart_delay
from clipper.local.routes_file import RoutesFile
from clipper.local.runner import Runner
from clipper.local.settings import RunSettings
from clipper.local.state import RunDir, RunInfo
from clipper.local.store import Store
from clipper.local.supervisor import Supervisor

log = logging.getLogger(__name__)

KEEPER_POLL_S = 0.25
"""How often the frontend's keeper looks for changed frontend settings."""
READY_WAIT_S = 15.0
"""After every model is stable, how long to wait for the frontend to say ready."""
POLL_S = 0.1


class StartupError(Exception):
    """The run cannot come up; the message says which part and why."""


class LocalRun:
    """The processes, files and loops of one ``clipper run``."""

    def __init__(self, settings: RunSettings, found: Manifests) -> None:
        self.settings = settings
        self.sink = LogSink()
        self.store = Store()
        self.store.apply(found, check_models=False)  # the caller checked everything
        self.started_at = datetime.now(UTC)
        self.token = secrets.token_urlsafe(24)
        self.forced = False
        self._stopping = False
        self.tasks = TaskRegistry()
        self._loops: list[Supervised] = []
        self.restarts = RestartPolicy(
            settings.restart_backoff_s,
            settings.restart_backoff_max_s,
            settings.restart_healthy_after_s,
        )
        self.applier = Applier(self.store, self._forget, self._changed)
        self._stop = asyncio.Event()
        self.run_dir: RunDir | None = None
        self.frontend: FrontendProcess | None = None
        self.control: ControlServer | None = None
        self.supervisor = Supervisor(
            self.sink,
            self._changed,
            settings.route_grace_s,
            settings.stop_grace_s,
            self.restarts,
            self.tasks,
        )
        self.runner: Runner | None = None
        self.fleet = FleetReader(self._frontend_urls)
        """The frontends' per-version counters, read for rollout analysis."""
        self._frontend_backoff = self.restarts.backoff()
        self.http_socket: socket.socket | None = None
        self._retiring: FrontendProcess | None = None
        """The frontend being replaced, draining beside its successor."""
        self._spare: FrontendProcess | None = None
        """A replacement frontend that is starting (not serving the run yet)."""
        self._refused_flags: list[str] | None = None
        """Frontend flags whose frontend never got ready: not retried until they change."""

    # --- the whole run ------------------------------------------------------------------

    async def main(self) -> int:
        """Run until a signal; the exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self._on_signal, signum)
        code = 0
        try:
            await self._start()
            if not self._stop.is_set():
                self._announce()
                await self._stop.wait()
        except (StartupError, ConfigError) as exc:
            log.error("clipper run cannot start: %s", exc)
            code = 1
        finally:
            await self._shutdown()
        return 130 if self.forced else code

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if not self._stop.is_set():
            log.info("received %s: stopping (send it again to kill everything at once)", name)
            self._stop.set()
            return
        log.warning("received %s again: killing every child process", name)
        self.forced = True
        for front in (self.frontend, self._retiring, self._spare):
            if front is not None:
                front.process.kill()
        self.supervisor.kill_all()

    def _changed(self) -> None:
        if self.runner is not None:
            self.runner.wake()

    def _forget(self, deployment: str) -> None:
        if self.runner is not None:
            self.runner.forget(deployment)

    # --- start-up ---------------------------------------------------------------------

    async def _start(self) -> None:
        http, grpc = ports.frontend_ports(
            self.store.apps, self.settings.http_port, self.settings.grpc_port
        )
        self.http_socket = ports.listen(self.settings.host, http)
        ports.check_free(self.settings.host, grpc)
        for ignored in ports.ignored_ports(self.store.apps):
            log.warning("%s asks for other frontend ports: local mode runs one frontend", ignored)
        self.run_dir = RunDir()
        self.runner = Runner(
            self.store,
            self.supervisor,
            RoutesFile(self.run_dir.routes),
            self.settings.global_args,
            self.fleet.fleet,
        )
        self.runner.write_routes()
        self.frontend = self._new_frontend(grpc.port)
        await self.frontend.start()
        self._supervise("reconcile loop", self.runner.run)
        self._supervise("frontend stats reader", self.fleet.run)
        await self._wait_listening()
        self.control = ControlServer(self.token, self.status, self.applier.apply_paths)
        await self.control.start()
        self._publish()
        if self.settings.watch:
            paths = self.settings.paths
            self._supervise("manifest watch", lambda: self.applier.watch(paths))
        await self._wait_serving()
        self._supervise("frontend keeper", self._keep_frontend)

    def _frontend_urls(self) -> list[str]:
        """Every frontend that listens: the serving one, and one beside it in a replacement."""
        fronts = (self.frontend, self._retiring, self._spare)
        return [f.url for f in fronts if f is not None and f.listening.is_set()]

    def _new_frontend(self, grpc_port: int) -> FrontendProcess:
        assert self.run_dir is not None
        assert self.http_socket is not None
        return FrontendProcess(
            self.sink,
            self.run_dir.routes,
            self.http_socket,
            grpc_port,
            self.settings.global_args,
            self._changed,
            self.tasks,
            self._frontend_flags(),
        )

    def _frontend_flags(self) -> list[str]:
        """The first ClipperApp's frontend settings (its ports' app: one frontend)."""
        apps = self.store.apps
        if not apps:
            return frontend_flags(api.FrontendSpec())
        spec = apps[0].spec
        flags = frontend_flags(spec.frontend, spec.state, apps[0].metadata.namespace)
        if spec.state.shared and spec.state.url:  # no password: the CRD refuses '@'
            flags += ["--state-url", spec.state.url]
        return flags

    def _supervise(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        self._loops.append(supervise(name, factory, registry=self.tasks))

    async def _wait_listening(self) -> None:
        front = self.frontend
        assert front is not None
        while not front.listening.is_set() and not self._stop.is_set():
            if front.process.exited.is_set():
                raise StartupError(f"the frontend {front.process.reason()}")
            await asyncio.sleep(POLL_S)

    async def _wait_serving(self) -> None:
        """Until every model has a stable version and the frontend is ready, or a failure."""
        loop = asyncio.get_running_loop()
        stable_since: float | None = None
        while not self._stop.is_set():
            self._check_startup()
            if all(d.status.stable_version for d in self.store.deployments):
                stable_since = stable_since or loop.time()
                assert self.frontend is not None
                if self.frontend.ready and await self._frontend_caught_up(self.frontend):
                    return
                if loop.time() - stable_since > READY_WAIT_S:
                    log.warning("every model is up, but the frontend does not say ready yet")
                    return
            await asyncio.sleep(POLL_S)

    async def _frontend_caught_up(self, front: FrontendProcess) -> bool:
        """Whether ``front`` has every replica of the routes file up (from its metrics)."""
        assert self.runner is not None
        text = await self._metrics(front)
        return text is not None and self.runner.routes.replicas() <= status.replicas_up(text)

    def _check_startup(self) -> None:
        assert self.frontend is not None
        if self.frontend.process.exited.is_set():
            raise StartupError(f"the frontend {self.frontend.process.reason()}")
        for deployment in self.store.deployments:
            target = deployment.status.version(deployment.spec.version)
            if target is not None and target.phase == "Failed":
                where = self.store.current.location(deployment)
                raise StartupError(
                    f"{where}: version {target.version} cannot start: {target.message}"
                )

    def _publish(self) -> None:
        assert self.run_dir is not None
        assert self.frontend is not None
        assert self.control is not None
        self.run_dir.publish(
            RunInfo(
                pid=os.getpid(),
                control_url=self.control.url,
                token=self.token,
                manifests=[str(p.resolve()) for p in self.settings.paths],
                http_url=self.frontend.url,
                grpc_address=self.frontend.grpc_address,
                started_at=self.started_at,
            )
        )

    def _announce(self) -> None:
        front = self.frontend
        assert front is not None
        apps = [app.metadata.name for app in self.store.apps]
        first = apps[0] if apps else "APP"
        lines = [
            "",
            f"clipper run: serving {len(apps)} app(s) ({', '.join(apps)}) with"
            f" {len(self.store.deployments)} model(s)",
            f"  REST     {front.url}/{first}/predict   (Clipper API; feedback: /{first}/feedback)",
            f"           {front.url}/v2/models/{first}/infer   (Open Inference Protocol)",
            f"  gRPC     {front.grpc_address}   (Open Inference Protocol, model name = app name)",
            f"  metrics  {front.url}/metrics",
            "  status   clipper status        change   clipper apply -f FILE  (or edit the files)",
            "  Ctrl-C stops everything.",
            "",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    # --- while serving ----------------------------------------------------------------

    async def _keep_frontend(self) -> None:
        """Restart the frontend whenever it exits, and replace it when its settings
        change (restarted itself after a crash, it picks up the frontend of the moment
        and the back-off where they were)."""
        while True:
            front = self.frontend
            assert front is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(front.process.exited.wait(), KEEPER_POLL_S)
            if self._stopping:
                return
            if front.process.exited.is_set():
                await self._restart_frontend(front)
            elif (flags := self._frontend_flags()) not in (front.flags, self._refused_flags):
                await self._replace_frontend(front, flags)

    async def _restart_frontend(self, front: FrontendProcess) -> None:
        """After a crash, with the back-off; connections wait in the REST socket's backlog."""
        process = front.process
        exited_at = process.exited_at or asyncio.get_running_loop().time()
        delay = restart_delay(self._frontend_backoff, process.healthy_since, exited_at)
        log.error("the frontend %s; restarting it in %gs", process.reason(), delay)
        await asyncio.sleep(delay)
        self.frontend = self._new_frontend(front.grpc_port)
        await self.frontend.start()

    async def _replace_frontend(self, old: FrontendProcess, flags: list[str]) -> None:
        """A rolling update of one: start the new frontend beside the old one (same
        REST socket, gRPC port shared), and once it serves, let the old one drain."""
        log.info("the frontend's settings changed (%s): replacing it", " ".join(flags))
        new = self._spare = self._new_frontend(old.grpc_port)
        await new.start()
        if not await self._serving(new):
            log.error(
                "the new frontend did not get ready (%s); the old one keeps serving",
                new.process.reason(),
            )
            self._refused_flags = flags
            await new.stop(self.settings.stop_grace_s, signal.SIGINT)
            self._spare = None
            return
        self.frontend, self._retiring, self._spare = new, old, None
        self._changed()
        await old.stop(self.settings.stop_grace_s)  # SIGTERM: it drains
        self._retiring = None
        log.info("the frontend was replaced (pid %s -> %s)", old.process.pid, new.process.pid)

    async def _serving(self, front: FrontendProcess) -> bool:
        """Whether ``front`` gets ready, with every replica up, within ``READY_WAIT_S``."""
        loop = asyncio.get_running_loop()
        until = loop.time() + READY_WAIT_S
        while loop.time() < until and not front.process.exited.is_set():
            if front.ready and await self._frontend_caught_up(front):
                return True
            await asyncio.sleep(POLL_S)
        return False

    async def status(self) -> dict[str, Any]:
        """The control API's ``GET /v1/status``."""
        front = self.frontend
        assert front is not None
        weights = await self._weights(front)
        endpoint = api.Endpoint(http=front.url, grpc=front.grpc_address)
        now = datetime.now(UTC)
        asked, reports = self.fleet.state_reports()
        for app in self.store.apps:
            app.status = app_status(app, self.store.deployments, endpoint, front.ready, now)
            _routing_verdict(app, front.rejected, now)
            backend = app.spec.state.backend
            set_state_condition(app.status.conditions, backend, asked, reports, now)
        frontend_state = "ready" if front.ready else ("live" if front.live else "starting")
        return {
            "pid": os.getpid(),
            "manifests": [str(p) for p in self.settings.paths],
            "startedAt": self.started_at.isoformat(),
            "frontend": {
                "http": front.url,
                "grpc": front.grpc_address,
                "live": front.live,
                "ready": front.ready,
            },
            "apps": [status.app_entry(app, weights) for app in self.store.apps],
            "deployments": [
                status.deployment_entry(d, str(self.store.current.source(d).path))
                for d in self.store.deployments
            ],
            "processes": [
                {"name": "frontend", "pid": front.process.pid, "state": frontend_state},
                *(status.replica_entry(r) for r in self.supervisor.replicas()),
            ],
            "events": [status.event_entry(e) for e in self.runner.events] if self.runner else [],
            "tasks": status.tasks_entry(self.tasks),
        }

    async def _weights(self, front: FrontendProcess) -> dict[str, dict[str, float]]:
        text = await self._metrics(front)
        return status.selection_weights(text) if text is not None else {}

    @staticmethod
    async def _metrics(front: FrontendProcess) -> str | None:
        """The frontend's Prometheus exposition, or None if it does not answer."""
        timeout = aiohttp.ClientTimeout(total=2)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(f"{front.url}/metrics") as answer,
            ):
                return await answer.text()
        return None

    # --- shutdown ---------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self._stopping = True
        await self.applier.close()  # an apply in flight finishes first
        for loop in self._loops:
            await loop.stop()
        if self.control is not None:
            await self.control.stop()
        for front in (self._spare, self._retiring, self.frontend):
            if front is not None:  # SIGINT: finish what is in flight, without a drain delay
                await front.stop(self.settings.stop_grace_s, signal.SIGINT)
        if self.http_socket is not None:
            self.http_socket.close()
        await self.supervisor.shutdown()
        if self.run_dir is not None:
            self.run_dir.remove()
        log.info("clipper run stopped")


def _routing_verdict(app: api.ClipperApp, rejected: str | None, now: datetime) -> None:
    """The frontend's ``RoutingRejected`` condition, as a cluster's frontend writes it.

    The frontend rejects a routes file whole, so no app's change in it applies: every
    app carries the condition. False only once it had been True."""
    conditions, generation = app.status.conditions, app.metadata.generation
    if rejected is not None:
        api.set_condition(
            conditions, "RoutingRejected", "True", "InvalidRoutingTable", rejected, now, generation
        )
    elif api.find_condition(conditions, "RoutingRejected") is not None:
        message = "the frontend serves the app's current spec"
        api.set_condition(
            conditions, "RoutingRejected", "False", "RoutingApplied", message, now, generation
        )
