"""The ``clipper frontend`` process: uvloop, both servers, SIGTERM drains.

On SIGTERM the frontend first drains: for ``drain_delay_s`` it keeps accepting
and answering while ``/readyz`` says 503, the time Kubernetes takes to remove a
terminating pod from its Service (the pod's preStop hook and
terminationGracePeriodSeconds allow for it). Then it stops accepting, finishes
the requests in flight (up to ``grace_period_s``) and exits 0, so a rolling
update loses no request. SIGINT (a person at a terminal, or local mode shutting
down, where no load balancer needs the delay) or a second signal skips the
delay. An invalid routes file at start-up exits 1 with the reason.

With ``--workers N`` this process is instead the parent of N such frontends
(``workers/supervisor.py``); each worker is tied to it (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import ctypes
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


async def serve(settings: FrontendSettings) -> int:
    frontend = Frontend(settings)
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
    await stop.wait()
    await frontend.drain(cut_short=now)
    log.info("shutting down: finishing requests in flight")
    await frontend.stop()
    return 0


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
