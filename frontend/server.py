"""The ``clipper frontend`` process: uvloop, both servers, SIGTERM drains.

On SIGTERM the frontend first drains: for ``drain_delay_s`` it keeps accepting
and answering while ``/readyz`` says 503, the time Kubernetes takes to remove a
terminating pod from its Service (the pod's preStop hook and
terminationGracePeriodSeconds allow for it). Then it stops accepting, finishes
the requests in flight (up to ``grace_period_s``) and exits 0, so a rolling
update loses no request. SIGINT (a person at a terminal, or local mode shutting
down, where no load balancer needs the delay) or a second signal skips the
delay. An invalid routes file at start-up exits 1 with the reason.

A shutdown is bounded (``bound_shutdown``): a frontend still stopping
``STOP_MARGIN_S`` after its drain delay and grace period should have ended logs
the stack of every task still pending and exits 1; if even its event loop is
stuck, ``faulthandler`` dumps every thread's stack and ends it a little later. A
frontend that cannot finish stopping must not live on, serving nobody and holding
its ports (and, as a worker, outliving the supervisor that would have reaped it).

With ``--workers N`` this process is instead the parent of N such frontends
(``workers/supervisor.py``); each worker is tied to it (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import ctypes
import faulthandler
import gc
import logging
import os
import signal
import sys

import uvloop

from clipper.common.errors import ConfigError
from clipper.frontend.runtime import Frontend
from clipper.frontend.settings import FrontendSettings

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
STOP_MARGIN_S = 10.0
"""How long past its drain delay and grace period a stopping frontend may take."""
STUCK_LOOP_MARGIN_S = 5.0
"""How long after that ``faulthandler`` waits for a loop too stuck to end itself."""


async def serve(settings: FrontendSettings) -> int:
    try:
        frontend = Frontend(settings)
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return 1
    try:
        await frontend.start()
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        await frontend.stop()
        return 1
    # Everything allocated so far (modules, routing, servers) lives for the whole
    # process: move it out of the collector's sight, so the collections that the
    # per-request garbage triggers stay short and the latency tail with them.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    now = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, signum, stop, now)
    log.info("frontend running (pid %d): SIGTERM drains, SIGINT stops", os.getpid())
    await stop.wait()
    limit = bound_shutdown(settings, cut_short=now.is_set())
    # A task of its own, waited for (not cancelled) with a limit: a step that
    # swallowed its cancellation could not hold the process past the limit either.
    shutdown = asyncio.ensure_future(_shut_down(frontend, now))
    if not (await asyncio.wait({shutdown}, timeout=limit))[0]:
        log.error(
            "shutdown did not finish within %gs; exiting with these tasks pending:\n%s",
            limit,
            pending_stacks(),
        )
        logging.shutdown()
        os._exit(1)  # Runner.close would wait for the same tasks again
    faulthandler.cancel_dump_traceback_later()
    shutdown.result()
    return 0


async def _shut_down(frontend: Frontend, now: asyncio.Event) -> None:
    await frontend.drain(cut_short=now)
    log.info("shutting down: finishing requests in flight")
    await frontend.stop()


def bound_shutdown(settings: FrontendSettings, cut_short: bool) -> float:
    """Seconds the shutdown that starts now may take (its drain delay, unless cut
    short, its grace period and ``STOP_MARGIN_S``); past that, and
    ``STUCK_LOOP_MARGIN_S`` more, ``faulthandler`` ends the process from its own
    thread, whatever the event loop is doing."""
    drain = 0.0 if cut_short else settings.drain_delay_s
    limit = drain + settings.grace_period_s + STOP_MARGIN_S
    faulthandler.dump_traceback_later(limit + STUCK_LOOP_MARGIN_S, exit=True)
    return limit


def pending_stacks() -> str:
    """Every pending task but the current one, with the chain of coroutines it is
    awaiting, innermost last (``Task.get_stack`` shows only the outermost frame)."""
    lines = []
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        lines.append(f"task {task.get_name()!r}:")
        awaited: object = task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            if frame is not None:
                code = frame.f_code
                lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    return "\n".join(lines)


def _on_signal(signum: int, stop: asyncio.Event, now: asyncio.Event) -> None:
    """The first SIGTERM drains; SIGINT or any second signal stops without the delay."""
    if signum == signal.SIGINT or stop.is_set():
        now.set()
    stop.set()


def run(settings: FrontendSettings) -> int:
    """One frontend; or, with ``--workers N``, the parent of N (``workers/supervisor.py``)."""
    if settings.worker is not None and settings.worker_group is not None:
        tie_to_parent(int(settings.worker_group.split("-")[0]))
    elif settings.workers > 1:
        from clipper.frontend.workers.supervisor import WorkerPool

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(WorkerPool(settings).run())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(settings))


def tie_to_parent(parent: int) -> None:
    """A worker gets SIGTERM (and drains) when its supervisor dies, however it died.

    Called before any thread starts; if the supervisor is already gone (it is no
    longer our parent), the worker stops at once."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        raise SystemExit("frontend worker: its supervisor is gone; not starting")
