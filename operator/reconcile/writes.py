"""What every reconcile writes (status, Events) and checks (who owns a name).

Order matters for a restart at any point. Status is written first, guarded by
the resourceVersion that was read, and only then are Events posted and objects
applied: a reconcile that loses the race (``Conflict``) has changed nothing, and
one cut off after its status write is completed by the next, whose actions
follow from that status (they are declarative). Events are posted only for a
status that was actually written, so no transition is announced twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from clipper.common import api
from clipper.common.rollout import Event
from clipper.operator import validation
from clipper.operator.builders import build_event
from clipper.operator.context import Context
from clipper.operator.kube import KubeError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Status = api.ClipperAppStatus | api.ModelDeploymentStatus


def utcnow() -> datetime:
    """Now, to the microsecond, in UTC (the state machine wants an aware time)."""
    return datetime.now(UTC)


async def write_status(ctx: Context, plural: str, raw: Obj, old: Status, new: Status) -> bool:
    """Replace the status of ``raw`` with ``new`` if it differs from ``old``; did it?"""
    if new.to_dict() == old.to_dict():
        return False
    await ctx.client.replace_status(plural, raw, new.to_dict())
    return True


async def post_events(ctx: Context, raw: Obj, events: Iterable[Event]) -> None:
    """Post ``events`` about ``raw``; a failure to post is logged, never fatal."""
    for event in events:
        body = build_event(raw, event.type, event.reason, event.message, utcnow(), ctx.instance)
        try:
            await ctx.client.create(body)
        except KubeError as exc:
            log.warning(
                "could not post event %s on %s: %s", event.reason, raw["metadata"]["name"], exc
            )


def owned(items: Iterable[Obj], uid: str | None) -> list[Obj]:
    """The objects among ``items`` whose controller is the object with ``uid``."""
    return [item for item in items if validation.controller_uid(item) == uid]


async def name_problem(
    ctx: Context, owner: api.ClipperApp | api.ModelDeployment, kind: str, name: str
) -> validation.Problem | None:
    """Whether ``name`` (of ``kind``, in the owner's namespace) is taken by someone else."""
    existing = await ctx.client.get(kind, owner.metadata.namespace or "", name)
    return validation.name_conflict(existing, owner)


async def report_problem(
    ctx: Context,
    plural: str,
    raw: Obj,
    status: Status,
    problem: validation.Problem,
    generation: int | None,
) -> None:
    """Mark the object not Ready and Degraded for ``problem``; a Warning Event when new."""
    new = status.model_copy(deep=True)
    now = utcnow()
    new.observed_generation = generation
    reason, message = problem.reason, problem.message
    api.set_condition(new.conditions, "Ready", "False", reason, message, now, generation)
    api.set_condition(new.conditions, "Degraded", "True", reason, message, now, generation)
    before = api.find_condition(status.conditions, "Degraded")
    seen = before is not None and (before.status, before.reason, before.message) == (
        "True",
        problem.reason,
        problem.message,
    )
    if await write_status(ctx, plural, raw, status, new) and not seen:
        await post_events(ctx, raw, [Event("Warning", problem.reason, problem.message)])
