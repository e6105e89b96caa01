"""One model-server process of one version, as the runner tracks it.

A replica is started with ``--port 0`` and learns its port from the server's own
``listening on HOST:PORT`` log line, so two replicas can never race for a port
that looked free. From then on its ``grpc.health.v1`` status is watched: a
replica is *ready* while it says SERVING. Stopping one that may be in the
routing table takes two steps: it is marked ``retiring`` (so the next routes
file leaves it out) and keeps running for ``route_grace_s`` while the frontend
catches up, then gets SIGTERM and drains as any model server does.

The health watch is supervised (``clipper.common.tasks``): should it die of a bug,
its traceback is logged, the replica counts as not ready (so it leaves the routes)
and the watch is restarted.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from clipper.common.tasks import Supervised, TaskRegistry, spawn, supervise
from clipper.local.health import watch_serving
from clipper.local.process import LogSink, Process

_LISTENING = re.compile(r"listening on (\S+):(\d+)")


@dataclass(frozen=True)
class Launch:
    """Everything one version's replicas run with; a different Launch means a restart."""

    deployment: str
    version: str
    args: tuple[str, ...]
    """The arguments after ``clipper``: global flags, then ``model serve ...``."""
    env: tuple[tuple[str, str], ...] = ()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "clipper", *self.args]

    def label(self, index: int) -> str:
        return f"model {self.deployment}@{self.version}#{index}"


class ModelReplica:
    """A model server process with its port and readiness."""

    def __init__(
        self,
        launch: Launch,
        index: int,
        sink: LogSink,
        changed: Callable[[], None],
        tasks: TaskRegistry | None = None,
    ) -> None:
        self.launch = launch
        self.index = index
        label = launch.label(index)
        self.process = Process(label, launch.command(), sink, dict(launch.env), tasks)
        self.process.watchers.append(self._find_port)
        self.port: int | None = None
        self.ready = False
        self.ever_ready = False
        self.retiring = False
        self._changed = changed
        self._tasks = tasks
        self._exit_task: asyncio.Task[None] | None = None
        self._health_task: Supervised | None = None

    @property
    def address(self) -> str | None:
        return f"127.0.0.1:{self.port}" if self.port is not None else None

    @property
    def exited(self) -> bool:
        return self.process.exited.is_set()

    @property
    def serving(self) -> bool:
        """Ready and not on its way out: what the routes file may list."""
        return self.ready and not self.retiring and not self.exited

    async def start(self) -> None:
        await self.process.start()
        self._exit_task = spawn(self._wait_exit(), f"{self.process.label}: exit", self._tasks)

    async def stop(self, route_grace_s: float, grace_s: float) -> None:
        """Leave the routes, wait for the frontend to notice, then SIGTERM (SIGKILL later)."""
        if not self.retiring:
            self.retiring = True
            self._changed()
        if self.ever_ready and route_grace_s > 0 and not self.exited:
            await asyncio.sleep(route_grace_s)
        await self._stop_watching()  # its channel closes before the server goes away
        await self.process.stop(grace_s)

    def _find_port(self, line: str) -> None:
        if self.port is not None or self.retiring:
            return
        match = _LISTENING.search(line)
        if match:
            self.port = int(match.group(2))
            address = self.address or ""
            self._health_task = supervise(
                f"{self.process.label}: health watch",
                lambda: watch_serving(address, self._report),
                registry=self._tasks,
                on_crash=self._lost,
            )

    def _report(self, serving: bool) -> None:
        if serving:
            self.process.mark_healthy()
        if serving == self.ready:
            return
        self.ready = serving
        self.ever_ready = self.ever_ready or serving
        self._changed()

    def _lost(self, _: BaseException) -> None:
        """The watch died: until it runs again, nothing says the replica serves."""
        if self.ready:
            self.ready = False
            self._changed()

    async def _stop_watching(self) -> None:
        task, self._health_task = self._health_task, None
        if task is not None:
            await task.stop()

    async def _wait_exit(self) -> None:
        await self.process.exited.wait()
        await self._stop_watching()
        self.ready = False
        self._changed()
