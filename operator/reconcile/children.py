"""Children that should exist and do not: how status tells it, and how a repair is recorded.

A reconcile re-applies every child it builds, so a child deleted (or edited) by
someone else is put back as soon as the owner is reconciled -- which its watch
event does at once (``clipper.operator.watched``). This module makes the repair
visible. It compares, in the reconcile's observation step, what should already
exist with what was read, instead of remembering the watch's DELETED events: the
stored state says what should exist, so a child deleted while the operator was
down is reported the same way after a restart.

A child is *missing* only if it should already be there -- a version recorded in
the model's status, an app already reconciled once (see the callers): the first
creation of a child is no repair. While children are missing, the owner's
conditions say which: ``Degraded`` True with reason ``ChildMissing``, and
``Ready`` False when serving depends on the child (a serving version's Deployment
or Service: without its Service its EndpointSlices are gone and the frontends
cannot reach it). That status is written before the repair, as every status is
(see ``writes``); the repair then applies the child, and posts one Normal Event
``Repaired`` per child, naming it (and logs it at INFO). A child deleted while the
reconcile ran (read, then gone before the apply) is recreated by the apply as
well; it is recognised by its new uid and recorded the same way. The recreated
child's own watch event reconciles the owner again, which finds it and computes
the usual conditions. A repair that fails (RBAC forbidden, say) leaves the conditions saying
what is missing while the queue retries; a name taken by someone else's object is
a ``NameConflict`` (``validation``), reported before any of this.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clipper.common import api
from clipper.common.rollout import Event
from clipper.operator.context import Context
from clipper.operator.reconcile.writes import applied, post_events

log = logging.getLogger(__name__)

MISSING = "ChildMissing"
"""The conditions' reason while a child is missing."""
REPAIRED = "Repaired"
"""The Event posted for each child put back."""


@dataclass(frozen=True)
class Child:
    """One object the owner should have; ``serving``: serving depends on it."""

    kind: str
    name: str
    serving: bool = True

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def missing_message(missing: Sequence[Child]) -> str:
    return f"missing: {', '.join(map(str, missing))} (being recreated)"


def mark_missing(
    conditions: list[api.Condition],
    missing: Sequence[Child],
    now: datetime,
    generation: int | None,
) -> None:
    """Set ``conditions`` in place to say that ``missing`` are missing (if any are)."""
    if not missing:
        return
    message = missing_message(missing)
    api.set_condition(conditions, "Degraded", "True", MISSING, message, now, generation)
    if any(child.serving for child in missing):
        api.set_condition(conditions, "Ready", "False", MISSING, message, now, generation)


def recreated(observed: dict[str, Any] | None, applied: dict[str, Any]) -> bool:
    """Whether ``applied`` is a new object where ``observed`` was read: it was deleted
    after the reconcile read it and before it applied it, so it was repaired too."""
    uid = (observed or {}).get("metadata", {}).get("uid")
    return uid is not None and uid != applied.get("metadata", {}).get("uid")


async def apply_child(
    ctx: Context,
    owner: api.ClipperApp | api.ModelDeployment,
    obj: dict[str, Any],
    observed: dict[str, Any] | None,
) -> Child | None:
    """Apply ``obj`` (read as ``observed`` by this reconcile), logging what the apply
    did (``writes.applied``); the child, if the apply re-created it (``recreated``)."""
    stored = await ctx.client.apply(obj)
    applied(owner, observed, stored)
    return Child(obj["kind"], obj["metadata"]["name"]) if recreated(observed, stored) else None


async def record_repairs(ctx: Context, raw: dict[str, Any], repaired: Sequence[Child]) -> None:
    """Log and post an Event for each child put back on ``raw``'s behalf."""
    meta = raw["metadata"]
    for child in repaired:
        log.info("%s %s/%s: recreated %s", raw["kind"], meta["namespace"], meta["name"], child)
    events = [
        Event("Normal", REPAIRED, f"recreated {child}, which was missing") for child in repaired
    ]
    await post_events(ctx, raw, events)
