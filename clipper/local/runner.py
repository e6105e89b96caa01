"""Local mode's operator: the rollout state machine driven against processes.

One loop, on the runner's event loop, wakes up whenever something changes (a
replica became ready or exited, an object was applied, the frontend's readiness
moved) or a rollout's timer is due, and then, in order:

1. lets the supervisor start, restart and retire processes (``sync``);
2. for each ModelDeployment, calls ``clipper.common.rollout.reconcile`` with what
   the supervisor observes of each version and what the frontends last counted
   per version (``clipper.local.fleet``), keeps the status it returns, logs its
   events, and applies its actions -- ``EnsureVersion`` as model-server processes,
   ``ScaleVersion(v, 0)`` and ``DeleteVersion`` as stops;
3. rewrites the routes file from the objects' ``status.traffic`` and the ready
   replicas (``clipper.common.routing_builder``, as the operator's discovery does).

Everything is in memory: a restarted ``clipper run`` starts from the manifests.
The loop never blocks: process starts and stops run as tasks of their own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clipper.common import api
from clipper.common.errors import ConfigError
from clipper.common.manifests import python_path, resolve_model_uri
from clipper.common.model_args import serve_args, serve_env
from clipper.common.rollout import (
    DeleteVersion,
    EnsureVersion,
    Plan,
    ScaleVersion,
    reconcile,
)
from clipper.common.rollout.analysis import Fleet
from clipper.common.routing_builder import routing_table
from clipper.local.replica import Launch
from clipper.local.routes_file import RoutesFile
from clipper.local.store import Store
from clipper.local.supervisor import Supervisor

log = logging.getLogger(__name__)

IDLE_S = 1.0
"""Longest sleep between two passes even when nothing is due (a safety net)."""
MIN_WAIT_S = 0.02


@dataclass(frozen=True)
class EventRecord:
    """A rollout event, as ``clipper status`` lists it."""

    time: datetime
    object: str
    type: str
    reason: str
    message: str


class Runner:
    """Reconciles every ModelDeployment of the store against the supervisor."""

    def __init__(
        self,
        store: Store,
        supervisor: Supervisor,
        routes: RoutesFile,
        global_args: Sequence[str] = (),
        fleet: Callable[[str], Fleet | None] | None = None,
    ) -> None:
        self.store = store
        self.fleet = fleet
        """What the frontends counted per version of a model (``clipper.local.fleet``)."""
        self.supervisor = supervisor
        self.routes = routes
        self.global_args = tuple(global_args)
        self.events: collections.deque[EventRecord] = collections.deque(maxlen=100)
        self.wakeup = asyncio.Event()
        self._origins: dict[tuple[str, str], tuple[api.VersionTemplate, Path]] = {}
        """Per version, its template and the folder of the manifest it first came from:
        relative paths of a version resolve there, even after the ModelDeployment was
        applied again from another file (a swap file in another folder, say)."""

    def wake(self) -> None:
        self.wakeup.set()

    async def run(self) -> None:
        """Reconcile until cancelled."""
        while True:
            self.wakeup.clear()
            try:
                wait = self.step()
            except Exception:  # a bug must not stop every rollout: say so, try again
                log.exception("reconciling failed; trying again in %.0fs", IDLE_S)
                wait = IDLE_S
            timeout = IDLE_S if wait is None else min(max(wait, MIN_WAIT_S), IDLE_S)
            # ``asyncio.timeout``, not ``wait_for``: on 3.11 ``wait_for`` swallows a
            # cancellation that arrives as the event is set, and the loop never stops.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wakeup.wait()

    def step(self) -> float | None:
        """One pass; seconds until something is due (None: only a change matters)."""
        loop_now = asyncio.get_running_loop().time()
        waits = [self.supervisor.sync(loop_now)]
        now = datetime.now(UTC)
        for deployment in self.store.deployments:
            plan = self._reconcile(deployment, now)
            waits.append(plan.requeue_after)
        waits.append(self.supervisor.sync(loop_now))  # start what the plans asked for now
        self.write_routes()
        due = [w for w in waits if w is not None]
        return min(due) if due else None

    def write_routes(self) -> None:
        endpoints = self.supervisor.endpoints()
        try:
            table = routing_table(self.store.apps, self.store.deployments, endpoints)
        except ConfigError as exc:  # the store refuses such sets; never expected here
            log.error("cannot build the routing table: %s", exc)
            return
        if self.routes.write(table):
            log.debug("routes file %s rewritten", self.routes.path)

    def forget(self, deployment: str) -> None:
        """A ModelDeployment was deleted: stop all its versions."""
        self.supervisor.delete(deployment)
        for key in [k for k in self._origins if k[0] == deployment]:
            del self._origins[key]

    # --- one ModelDeployment ----------------------------------------------------------

    def _reconcile(self, deployment: api.ModelDeployment, now: datetime) -> Plan:
        name = deployment.metadata.name
        observed = self.supervisor.observe(name)
        fleet = self.fleet(deployment.model_name) if self.fleet is not None else None
        plan = reconcile(
            deployment.spec,
            deployment.status,
            observed,
            now,
            deployment.metadata.generation,
            fleet,
        )
        deployment.status = plan.status
        for event in plan.events:
            level = logging.WARNING if event.type == "Warning" else logging.INFO
            log.log(level, "ModelDeployment/%s: %s: %s", name, event.reason, event.message)
            self.events.append(
                EventRecord(now, f"ModelDeployment/{name}", event.type, event.reason, event.message)
            )
        for action in plan.actions:
            if isinstance(action, EnsureVersion):
                self.supervisor.ensure(self._launch(deployment, action), action.replicas)
            elif isinstance(action, ScaleVersion):
                self.supervisor.scale_to_zero(name, action.version)
            elif isinstance(action, DeleteVersion):
                self.supervisor.delete(name, action.version)
                self._origins.pop((name, action.version), None)
        return plan

    def _launch(self, deployment: api.ModelDeployment, action: EnsureVersion) -> Launch:
        key = (deployment.metadata.name, action.version)
        origin = self._origins.get(key)
        if origin is None or origin[0] != action.template:
            origin = (action.template, self.store.current.source(deployment).base_dir)
            self._origins[key] = origin
        return launch(deployment, action.version, action.template, origin[1], self.global_args)


def launch(
    deployment: api.ModelDeployment,
    version: str,
    template: api.VersionTemplate,
    base_dir: Path,
    global_args: Sequence[str] = (),
) -> Launch:
    """How to run ``version`` of ``deployment``: ``clipper model serve`` on a free port.

    Relative model paths resolve against the manifest's folder, which is also put
    first on the model server's ``PYTHONPATH`` (for ``module:function`` models).
    """
    uri = None
    if template.model_uri and template.framework != "noop":
        try:
            uri = resolve_model_uri(template.model_uri, template.framework, base_dir)
        except ConfigError:  # checked when applied; pass it through for the server to report
            uri = template.model_uri
    args = serve_args(template, name=deployment.model_name, version=version, port=0, model_uri=uri)
    inherited = os.environ.get("PYTHONPATH")
    paths = [python_path(base_dir), *([inherited] if inherited else [])]
    env = {**serve_env(template), "PYTHONPATH": os.pathsep.join(paths)}
    return Launch(
        deployment=deployment.metadata.name,
        version=version,
        args=(*global_args, "model", "serve", *args),
        env=tuple(sorted(env.items())),
    )
