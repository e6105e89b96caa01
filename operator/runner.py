"""Run the operator in this process: kopf's loop with Clipper's registry and context.

kopf gets the namespaces to watch (or the whole cluster), peering, its peering
identity and the liveness endpoint; everything else is in ``kopf_settings``.

The identity is given, not left to kopf: kopf's default is ``getpass.getuser()``
plus the host, and in the images (uid 10001, no passwd entry, no ``USER``)
``getuser()`` raises, so the operator crash-looped in every real pod (found by the
kind suite, e2e/). kopf's own ``POD_ID`` variable still wins when set. It handles SIGTERM
and SIGINT itself: the watches stop, the cleanup handler stops the reconcile
queue (a reconcile cut short is redone by the next operator, since every
reconcile starts from what is stored) and closes the API client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import kopf
import uvloop
from kopf._core.engines.peering import Identity  # not re-exported; a NewType of str

from clipper.operator.context import Context
from clipper.operator.handlers import build_registry
from clipper.operator.queue import ReconcileQueue
from clipper.operator.settings import OperatorSettings

log = logging.getLogger(__name__)


async def operate(settings: OperatorSettings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or until ``stop`` is set)."""
    # One line per watch event ("Handler ... succeeded") would drown the log: the
    # handlers only enqueue. kopf's warnings and errors about objects still show.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    ctx = Context(
        settings,
        ReconcileQueue(settings.error_backoff_seconds, settings.error_backoff_max_seconds),
    )
    where = ", ".join(settings.namespaces) or "all namespaces"
    log.info("clipper operator starting (%s; peering: %s)", where, settings.peering or "standalone")
    await kopf.operator(
        registry=build_registry(ctx),
        namespaces=list(settings.namespaces),
        clusterwide=not settings.namespaces,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=settings.priority,
        liveness_endpoint=settings.liveness_endpoint,
        identity=peering_identity(),
        stop_flag=stop,
        memo=ctx,
    )


def peering_identity() -> Identity:
    """Who this operator is among its peers: ``POD_ID`` if set (kopf's convention),
    else the host (in a pod: the pod's name) and the process id. Never the user name,
    which a uid without a passwd entry does not have."""
    return Identity(os.environ.get("POD_ID") or f"{socket.gethostname()}/{os.getpid()}")


def run(settings: OperatorSettings) -> int:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(operate(settings))
    return 0
