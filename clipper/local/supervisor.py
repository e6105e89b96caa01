"""The model servers of every version, kept as the rollout's actions ask.

This is local mode's stand-in for Deployments and their ReplicaSets. The runner
hands each action of a rollout plan to ``Supervisor`` (``ensure``, ``scale_to_zero``,
``delete``), reads back ``observe`` (what the rollout state machine sees) and
``endpoints`` (what the routes file lists), and calls ``sync`` on every wake-up:
all bookkeeping happens there, on the runner's own loop, never in callbacks.

Per version (``VersionGroup``):

- replicas are numbered ``0..n-1``; a missing one is started, an extra one retired;
- a new ``Launch`` (the template changed in place) starts a full new set, and the
  old replicas keep serving until as many new ones are ready -- a surge, as a
  Deployment's rolling update does;
- a replica that exits unasked is restarted with a doubling back-off (1 s to 30 s,
  reset once it had served for a while), like a pod in CrashLoopBackOff -- the
  frontend's rule too (``clipper.local.restarts``);
- a replica that exits before it was ever ready, or three exits in one attempt,
  mark the version *failing*, with the reason (exit code, last error line), which
  fails a rollout at once instead of after its progress deadline. The mark is
  cleared by a new attempt (a new Launch, a scale-up from zero) or once all
  replicas are ready.

Starting and stopping processes are background tasks (``clipper.common.tasks.spawn``):
a failure is logged with its traceback and counted in the run's task registry,
which ``clipper status`` shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from clipper.common.rollout import VersionObservation
from clipper.common.tasks import Backoff, TaskRegistry, spawn
from clipper.local.process import LogSink
from clipper.local.replica import Launch, ModelReplica
from clipper.local.restarts import RestartPolicy, restart_delay

log = logging.getLogger(__name__)

CRASH_LOOP = 3
"""Unasked exits within one attempt after which a version is failing."""


class Stopper:
    """Stop tasks in flight, so shutdown can wait for every one of them."""

    def __init__(self, changed: Callable[[], None], tasks: TaskRegistry | None = None) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self._changed = changed
        self._registry = tasks

    def stop(self, replica: ModelReplica, route_grace_s: float, grace_s: float) -> None:
        stopping = replica.stop(route_grace_s, grace_s)
        task = spawn(stopping, f"stopping {replica.process.label}", self._registry)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)  # ``spawn`` has logged a failure with its traceback
        self._changed()


class VersionGroup:
    """The replicas of one version of one ModelDeployment."""

    def __init__(self, supervisor: Supervisor, deployment: str, version: str) -> None:
        self.sup = supervisor
        self.deployment = deployment
        self.version = version
        self.launch: Launch | None = None
        self.wanted = 0
        self.current: dict[int, ModelReplica] = {}
        self.outdated: list[ModelReplica] = []
        self.failure: str | None = None
        self.crashes = 0
        self.backoff: dict[int, Backoff] = {}
        self.restart_at: dict[int, float] = {}

    @property
    def name(self) -> str:
        return f"{self.deployment}@{self.version}"

    def ensure(self, launch: Launch, replicas: int) -> None:
        if launch != self.launch:
            if self.launch is not None:
                log.info("%s: its template changed; replacing its replicas", self.name)
            self.outdated.extend(self.current.values())
            self.current = {}
            self.launch = launch
            self._new_attempt()
        elif self.wanted == 0 and replicas > 0:
            self._new_attempt()
        self.wanted = replicas

    def scale_to_zero(self) -> None:
        self.wanted = 0

    def _new_attempt(self) -> None:
        self.failure, self.crashes = None, 0
        self.backoff.clear()
        self.restart_at.clear()

    def observation(self) -> VersionObservation:
        return VersionObservation(
            ready_replicas=self.ready_count(),
            failing=self.failure is not None,
            message=self.failure or "",
        )

    def ready_count(self) -> int:
        return sum(r.serving for r in self.current.values())

    def endpoints(self) -> list[str]:
        """Serving replicas, old ones still in a surge included."""
        replicas = [*self.current.values(), *self.outdated]
        return [r.address for r in replicas if r.serving and r.address]

    def replicas(self) -> list[ModelReplica]:
        return [*self.current.values(), *self.outdated]

    # --- sync -----------------------------------------------------------------------

    def sync(self, now: float) -> float | None:
        """Start, restart and retire replicas; seconds until a restart is due, if any."""
        self._reap(now)
        wait: list[float] = []
        for index in range(self.wanted):
            if index in self.current or self.launch is None:
                continue
            due = self.restart_at.get(index, now)
            if due <= now:
                self.restart_at.pop(index, None)
                self._start(index)
            else:
                wait.append(due - now)
        for index in [i for i in self.current if i >= self.wanted]:
            self.sup.retire(self.current.pop(index))
        if self.outdated and (self.wanted == 0 or self.ready_count() >= self.wanted):
            for replica in self.outdated:
                self.sup.retire(replica)
            self.outdated = []
        if self.failure and self.wanted and self.ready_count() >= self.wanted:
            self.failure = None
        return min(wait) if wait else None

    def _reap(self, now: float) -> None:
        self.outdated = [r for r in self.outdated if not r.exited]
        for index, replica in list(self.current.items()):
            if replica.exited and not replica.process.stopping:
                del self.current[index]
                self._crashed(index, replica, now)

    def _crashed(self, index: int, replica: ModelReplica, now: float) -> None:
        self.crashes += 1
        reason = replica.process.reason()
        if not replica.ever_ready:
            self.failure = f"replica #{index} {reason} (before it was ready)"
        elif self.crashes >= CRASH_LOOP:
            self.failure = f"replica #{index} {reason} ({self.crashes} exits)"
        backoff = self.backoff.setdefault(index, self.sup.restarts.backoff())
        process = replica.process
        delay = restart_delay(backoff, process.healthy_since, process.exited_at or now)
        self.restart_at[index] = now + delay
        if index < self.wanted:
            log.warning("model %s#%d %s; restarting it in %gs", self.name, index, reason, delay)

    def _start(self, index: int) -> None:
        assert self.launch is not None
        sup = self.sup
        replica = ModelReplica(self.launch, index, sup.sink, sup.changed, sup.tasks)
        self.current[index] = replica
        self.sup.spawn(replica)


class Supervisor:
    """Every model server of a ``clipper run``."""

    def __init__(
        self,
        sink: LogSink,
        changed: Callable[[], None],
        route_grace_s: float = 1.0,
        stop_grace_s: float = 30.0,
        restarts: RestartPolicy | None = None,
        tasks: TaskRegistry | None = None,
    ) -> None:
        self.sink = sink
        self.changed = changed
        self.route_grace_s = route_grace_s
        self.stop_grace_s = stop_grace_s
        self.restarts = restarts or RestartPolicy()
        self.tasks = tasks
        self.groups: dict[tuple[str, str], VersionGroup] = {}
        self.stopper = Stopper(changed, tasks)
        self._starting: set[asyncio.Task[None]] = set()
        self._spawned: set[ModelReplica] = set()

    def group(self, deployment: str, version: str) -> VersionGroup:
        key = (deployment, version)
        if key not in self.groups:
            self.groups[key] = VersionGroup(self, deployment, version)
        return self.groups[key]

    def ensure(self, launch: Launch, replicas: int) -> None:
        self.group(launch.deployment, launch.version).ensure(launch, replicas)

    def scale_to_zero(self, deployment: str, version: str) -> None:
        group = self.groups.get((deployment, version))
        if group is not None:
            group.scale_to_zero()

    def delete(self, deployment: str, version: str | None = None) -> None:
        """Stop and forget one version, or every version of ``deployment``."""
        for key in [k for k in self.groups if k[0] == deployment and version in (None, k[1])]:
            group = self.groups.pop(key)
            for replica in group.replicas():
                self.retire(replica)

    def observe(self, deployment: str) -> dict[str, VersionObservation]:
        return {v: g.observation() for (d, v), g in self.groups.items() if d == deployment}

    def endpoints(self) -> dict[tuple[str, str], list[str]]:
        return {key: group.endpoints() for key, group in self.groups.items()}

    def replicas(self) -> list[ModelReplica]:
        return [r for group in self.groups.values() for r in group.replicas()]

    def sync(self, now: float) -> float | None:
        self._spawned = {r for r in self._spawned if not r.exited}
        waits = [w for g in self.groups.values() if (w := g.sync(now)) is not None]
        return min(waits) if waits else None

    def spawn(self, replica: ModelReplica) -> None:
        self._spawned.add(replica)
        task = spawn(self._spawn(replica), f"starting {replica.process.label}", self.tasks)
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _spawn(self, replica: ModelReplica) -> None:
        try:
            await replica.start()
        except OSError as exc:  # the interpreter cannot be started at all
            log.error("cannot start %s: %s", replica.process.label, exc)
        finally:
            self.changed()

    def retire(self, replica: ModelReplica) -> None:
        self.stopper.stop(replica, self.route_grace_s, self.stop_grace_s)

    async def shutdown(self) -> None:
        """Stop every model server now (no route grace: the frontend is gone)."""
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)
        for group in self.groups.values():
            for replica in group.replicas():
                self.stopper.stop(replica, 0.0, self.stop_grace_s)
        self.groups.clear()
        while self.stopper.tasks:
            await asyncio.gather(*list(self.stopper.tasks), return_exceptions=True)

    def kill_all(self) -> None:
        """SIGKILL every model server (a second Ctrl-C)."""
        for replica in self._spawned:
            replica.process.kill()
