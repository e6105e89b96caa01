"""Long-lived asyncio tasks that cannot die silently.

A bare ``asyncio.create_task`` whose exception nobody retrieves dies quietly: the
batcher that fed a replica stops, the replica still looks up, and every query
for it waits for its deadline. So every long-lived task in this project is
started through ``supervise``, which

* logs the traceback when the task dies (at ERROR, with the task's name);
* calls ``on_crash(exc)`` so the owner can fail the work the task held (a
  batch's callers hear back instead of waiting for their deadline);
* restarts it after a back-off that doubles per crash and resets once the task
  has run ``healthy_after_s`` without crashing, or, with ``restart=False`` (or
  once ``max_crashes`` is reached), leaves it dead and reports that to the
  ``TaskRegistry``, whose ``failures`` feed readiness (``/readyz`` turns red).

A task that returns normally has finished its job and is not restarted;
cancellation (``stop``) is never a crash. One-shot background work (a drain, a
close) goes through ``spawn``, which keeps a reference until it ends and logs an
exception instead of dropping it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Backoff:
    """Restart delays: ``first_s``, doubling to ``max_s``; reset after a healthy run.

    ``delay(ran_s)`` is the wait before the next restart of something that ran
    ``ran_s`` seconds before it failed: a run of at least ``healthy_after_s``
    counts as healthy and starts the doubling over, as a kubelet resets a pod's
    CrashLoopBackOff after it has run for a while.
    """

    first_s: float = 1.0
    max_s: float = 30.0
    healthy_after_s: float = 10.0
    _next_s: float = 0.0

    def delay(self, ran_s: float) -> float:
        if ran_s >= self.healthy_after_s or self._next_s == 0.0:
            self._next_s = self.first_s
        else:
            self._next_s = min(self.max_s, self._next_s * 2)
        return self._next_s

    def reset(self) -> None:
        self._next_s = 0.0


class TaskRegistry:
    """The supervised tasks of one process: which died for good, how often each crashed."""

    def __init__(self) -> None:
        self.crashes: dict[str, int] = {}
        self._dead: dict[str, str] = {}
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def failures(self) -> dict[str, str]:
        """Tasks that died and will not be restarted: name -> the error, for readiness."""
        return dict(self._dead)

    @property
    def healthy(self) -> bool:
        return not self._dead

    def crashed(self, name: str) -> None:
        self.crashes[name] = self.crashes.get(name, 0) + 1

    def died(self, name: str, error: BaseException) -> None:
        self._dead[name] = f"{type(error).__name__}: {error}"

    def forget(self, name: str) -> None:
        """A dead task's owner is gone (a replica removed): it no longer counts."""
        self._dead.pop(name, None)


DEFAULT_REGISTRY = TaskRegistry()
"""For code that has no registry of its own to report to (tests, one-off tools)."""


class Supervised:
    """A running supervised task; see ``supervise``."""

    def __init__(
        self,
        name: str,
        factory: Callable[[], Awaitable[None]],
        registry: TaskRegistry,
        on_crash: Callable[[BaseException], None] | None,
        restart: bool,
        backoff: Backoff,
        max_crashes: int | None,
    ) -> None:
        self.name = name
        self.error: BaseException | None = None
        """The last crash's exception, if any."""
        self.dead = False
        """It crashed and will not be restarted."""
        self._factory = factory
        self._registry = registry
        self._on_crash = on_crash
        self._restart = restart
        self._backoff = backoff
        self._max_crashes = max_crashes
        self._crashes = 0
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=name)

    @property
    def task(self) -> asyncio.Task[None]:
        return self._task

    def done(self) -> bool:
        return self._task.done()

    async def wait(self) -> None:
        """Until the task ends by itself (returns, or dies for good); never raises its crash."""
        await asyncio.shield(self._task)

    def cancel(self) -> None:
        self._task.cancel()

    async def stop(self) -> None:
        """Cancel it and wait until it has ended."""
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self._factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._crashed(exc):
                    return
                await asyncio.sleep(self._backoff.delay(loop.time() - started))

    def _crashed(self, exc: Exception) -> bool:
        """Log and report a crash; whether to restart."""
        self.error = exc
        self._crashes += 1
        self._registry.crashed(self.name)
        restart = self._restart and (self._max_crashes is None or self._crashes < self._max_crashes)
        log.error(
            "task %s died (%s); %s",
            self.name,
            f"{type(exc).__name__}: {exc}",
            "restarting it" if restart else "not restarting it: readiness reports it",
            exc_info=exc,
        )
        if self._on_crash is not None:
            try:
                self._on_crash(exc)
            except Exception:
                log.exception("task %s: failing the work it held failed too", self.name)
        if not restart:
            self.dead = True
            self._registry.died(self.name, exc)
        return restart


def supervise(
    name: str,
    factory: Callable[[], Awaitable[None]],
    *,
    registry: TaskRegistry | None = None,
    on_crash: Callable[[BaseException], None] | None = None,
    restart: bool = True,
    backoff: Backoff | None = None,
    max_crashes: int | None = None,
) -> Supervised:
    """Run ``factory()`` as a long-lived task that logs, fails its work and restarts or
    reports when it dies. ``factory`` is called again for each restart."""
    return Supervised(
        name,
        factory,
        registry or DEFAULT_REGISTRY,
        on_crash,
        restart,
        backoff or Backoff(first_s=0.05, max_s=5.0, healthy_after_s=10.0),
        max_crashes,
    )


def spawn(
    coro: Coroutine[Any, Any, Any], name: str, registry: TaskRegistry | None = None
) -> asyncio.Task[Any]:
    """Run one-shot background work, keep it referenced, log it if it fails."""
    registry = registry or DEFAULT_REGISTRY
    task = asyncio.get_running_loop().create_task(coro, name=name)
    registry._background.add(task)
    task.add_done_callback(_finished_background(registry, name))
    return task


def _finished_background(registry: TaskRegistry, name: str) -> Callable[[asyncio.Task[Any]], None]:
    def finished(task: asyncio.Task[Any]) -> None:
        registry._background.discard(task)
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            registry.crashed(name)
            log.error("background task %s failed: %s", name, exc, exc_info=exc)

    return finished


def describe_exit(returncode: int | None) -> str:
    """A child process's exit status, as a log line says it: ``exit status 1``,
    ``killed by SIGKILL``."""
    if returncode is not None and returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"
