"""One key from the queue to its reconcile, and when to come back to it.

A reconcile that loses a write race (``Conflict``) runs again at once from what
the winner wrote; one that reports nothing timed comes back after the resync
period, as long as the object exists (a safety net for a missed watch event).
Other errors propagate to the queue, which retries with back-off.
"""

from __future__ import annotations

import logging

from clipper.operator.context import APPS, Context, Key
from clipper.operator.kube import Conflict
from clipper.operator.reconcile import reconcile_app, reconcile_model

log = logging.getLogger(__name__)

CONFLICT_RETRY_SECONDS = 0.05


async def dispatch(ctx: Context, key: Key) -> float | None:
    plural, namespace, name = key
    reconcile = reconcile_app if plural == APPS else reconcile_model
    log.debug("reconcile %s/%s/%s", plural, namespace, name)
    try:
        delay = await reconcile(ctx, namespace, name)
    except Conflict as exc:
        log.debug("%s/%s/%s changed while reconciling (%s): again", plural, namespace, name, exc)
        return CONFLICT_RETRY_SECONDS
    if delay is None and key in ctx.live:
        return ctx.settings.resync_seconds
    return delay
