"""The reconcile queue as a supervised task, and the liveness probe that watches it.

The queue is the operator: if its task ended, watch events would still be
enqueued and nothing would ever be reconciled, while the process looked healthy.
So it runs under ``clipper.common.tasks.supervise``: a crash (a bug in the queue's
bookkeeping; a reconcile's own errors are retried per key by the queue) is logged
with its traceback and the queue restarted after a back-off -- keys already queued
stay queued, since the queue's state outlives its task. After ``MAX_CRASHES``
crashes the operator stops pretending: the task is left dead, reported to the
``TaskRegistry``, and the ``reconcile_queue`` probe behind kopf's liveness
endpoint fails, so the kubelet restarts the pod (the install manifests probe it).
Without a liveness endpoint nothing would restart the process, so it stops
itself (SIGTERM, kopf's graceful stop), as it did before the queue was supervised.

A queue that *returns* has stopped too: that counts as a crash.
"""

from __future__ import annotations

import logging
import signal

import kopf

from clipper.common.tasks import Backoff, Supervised, supervise
from clipper.operator.context import Context, Key
from clipper.operator.queue import Reconcile

log = logging.getLogger(__name__)

QUEUE_TASK = "clipper-reconcile-queue"
MAX_CRASHES = 5
BACKOFF = Backoff(first_s=1.0, max_s=30.0, healthy_after_s=300.0)


class QueueStopped(RuntimeError):
    """The reconcile queue's task returned, which it never should."""


def start_queue(
    ctx: Context,
    reconcile: Reconcile[Key],
    backoff: Backoff | None = None,
    max_crashes: int = MAX_CRASHES,
) -> Supervised:
    """Run ``ctx.queue`` with ``ctx.settings.workers`` workers until cancelled."""

    async def run() -> None:
        await ctx.queue.run(reconcile, ctx.settings.workers)
        raise QueueStopped("the reconcile queue stopped by itself")

    queue = supervise(
        QUEUE_TASK,
        run,
        registry=ctx.tasks,
        backoff=backoff or Backoff(BACKOFF.first_s, BACKOFF.max_s, BACKOFF.healthy_after_s),
        max_crashes=max_crashes,
    )
    queue.task.add_done_callback(lambda _: _gave_up(ctx, queue))
    return queue


def _gave_up(ctx: Context, queue: Supervised) -> None:
    if not queue.dead:
        return  # cancelled: the operator is stopping
    log.critical("the reconcile queue is dead (%s): nothing is reconciled any more", queue.error)
    if ctx.settings.liveness_endpoint is None:
        log.critical("no liveness endpoint to report it: stopping the operator")
        signal.raise_signal(signal.SIGTERM)


def check_tasks(ctx: Context) -> dict[str, int]:
    """The liveness probe's verdict: crashes per task; fails if one is dead."""
    failures = ctx.tasks.failures
    if failures:
        dead = "; ".join(f"{name}: {error}" for name, error in sorted(failures.items()))
        raise kopf.PermanentError(f"dead: {dead}")
    return dict(ctx.tasks.crashes)
