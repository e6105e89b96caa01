"""The ``clipper frontend`` process: uvloop, both servers, SIGTERM drains.

On SIGTERM the frontend first drains: for ``drain_delay_s`` it keeps accepting
and answering while ``/readyz`` says 503, the time Kubernetes takes to remove a
terminating pod from its Service (the pod's preStop hook and
terminationGracePeriodSeconds allow for it). Then it stops accepting, finishes
the requests in flight (up to ``grace_period_s``) and exits 0, so a rolling
update loses no request. SIGINT (a person at a terminal, or local mode shutting
down, where no load balancer needs the delay) or a second signal skips the
delay. An invalid routes file at start-up exits 1 with the reason.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

import uvloop

from clipper.common.errors import ConfigError
from clipper.frontend.runtime import Frontend
from clipper.frontend.settings import FrontendSettings

log = logging.getLogger(__name__)


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
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(settings))
