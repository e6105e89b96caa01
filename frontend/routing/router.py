"""The live routing table: apps, their models, versions and replicas.

``apply`` takes a whole ``RoutingTable`` (what discovery produced) and turns
the running state into it by difference: versions, replicas and apps that are
new start, ones that are gone drain in the background, and the ones that stay
keep their queues, AIMD limits, caches and learned selection weights. Discovery
can therefore hand over a complete table on every change, whatever changed,
and in-flight requests never notice.

A model version used by several apps is one ``VersionRuntime``: the replica
lists are merged, its AIMD budget follows the tightest latency objective among
those apps, and the first app's batching settings win (a conflict is logged).

Every task the routing state starts (batchers, health watchers, drains) reports
to the frontend's one ``TaskRegistry``, whose crashes feed ``/metrics`` and
whose dead tasks turn ``/readyz`` red.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from clipper.common.errors import ConfigError, NotFound
from clipper.common.routing import AppConfig, BatchingConfig, RoutingTable
from clipper.common.tasks import TaskRegistry, spawn
from clipper.frontend.metrics import AppState, Metrics, ReplicaState, Snapshot, VersionState
from clipper.frontend.routing.apps import AppRuntime, Inherit, ModelRuntime
from clipper.frontend.routing.versions import VersionRuntime
from clipper.frontend.selection import make_policy
from clipper.frontend.settings import FrontendSettings

log = logging.getLogger(__name__)

VersionKey = tuple[str, str]


@dataclass
class _VersionPlan:
    batching: BatchingConfig
    slo_s: float
    replicas: list[str] = field(default_factory=list)


class Router:
    """Owns every app and version runtime of one frontend."""

    def __init__(
        self, settings: FrontendSettings, metrics: Metrics, tasks: TaskRegistry | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tasks = tasks or TaskRegistry()
        self.apps: dict[str, AppRuntime] = {}
        self.versions: dict[VersionKey, VersionRuntime] = {}
        self.rng = random.Random(settings.seed)
        self.loaded = False
        self._closing: set[asyncio.Task[None]] = set()
        self.on_inherit: Inherit | None = None
        """Handed to every app: the state backend's ``inherited`` (``runtime.py``)."""
        metrics.watch(self.snapshot)

    def app(self, name: str) -> AppRuntime:
        try:
            return self.apps[name]
        except KeyError:
            known = ", ".join(sorted(self.apps)) or "none"
            raise NotFound(f"unknown app '{name}' (apps served: {known})") from None

    def apply(self, table: RoutingTable) -> None:
        """Make the running state match ``table``; ``ConfigError`` leaves it untouched."""
        _check(table)
        plans = self._plan(table)
        for key, plan in plans.items():
            version = self.versions.get(key)
            if version is None:
                version = self.versions[key] = VersionRuntime(
                    *key, self.settings, self.metrics, self.tasks
                )
            version.configure(plan.batching, plan.slo_s, plan.replicas)
        for key in [k for k in self.versions if k not in plans]:
            self._close(self.versions.pop(key))
        for name, config in table.apps.items():
            models = self._models(config)
            if name in self.apps:
                self.apps[name].update(config, models)
            else:
                self.apps[name] = AppRuntime(
                    config, models, self.metrics.app(name), self.settings.seed, self.on_inherit
                )
        for name in [n for n in self.apps if n not in table.apps]:
            del self.apps[name]
        self.loaded = True
        log.info(
            "routing table applied: %d apps, %d model versions", len(self.apps), len(self.versions)
        )

    async def close(self) -> None:
        """Drain every version (queued work finishes or expires), then close channels."""
        for key in list(self.versions):
            self._close(self.versions.pop(key))
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    def snapshot(self) -> Snapshot:
        apps = [
            AppState(name, app.cache.stats, app.policy.weights(""))
            for name, app in self.apps.items()
        ]
        versions = [VersionState(m, v, rt.queue.rows) for (m, v), rt in self.versions.items()]
        replicas = [
            ReplicaState(m, v, b.replica.address, b.replica.up, b.limit.limit)
            for (m, v), rt in self.versions.items()
            for b in rt.batchers
        ]
        return Snapshot(apps, versions, replicas)

    def _plan(self, table: RoutingTable) -> dict[VersionKey, _VersionPlan]:
        plans: dict[VersionKey, _VersionPlan] = {}
        for app in table.apps.values():
            slo_s = app.latency_slo_ms / 1000
            for model in app.models:
                for route in model.versions:
                    key = (model.name, route.version)
                    plan = plans.get(key)
                    if plan is None:
                        plan = plans[key] = _VersionPlan(model.batching, slo_s)
                    elif plan.batching != model.batching:
                        log.warning(
                            "model %s@%s: apps disagree on batching; using the first app's",
                            *key,
                        )
                    plan.slo_s = min(plan.slo_s, slo_s)
                    plan.replicas.extend(r for r in route.replicas if r not in plan.replicas)
        return plans

    def _models(self, config: AppConfig) -> dict[str, ModelRuntime]:
        return {
            model.name: ModelRuntime(
                model.name,
                [
                    (self.versions[(model.name, v.version)], v.weight)
                    for v in model.versions
                    if not v.shadow
                ],
                tuple(self.versions[(model.name, v.version)] for v in model.versions if v.shadow),
            )
            for model in config.models
        }

    def _close(self, version: VersionRuntime) -> None:
        task = spawn(version.close(), "version_drain", self.tasks)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def _check(table: RoutingTable) -> None:
    """Everything that can reject a table, tried before anything changes."""
    for name, config in table.apps.items():
        models = [model.name for model in config.models]
        try:
            make_policy(config.selection, models)
        except ConfigError as exc:
            raise ConfigError(exc.message, f"apps.{name}.selection") from None
