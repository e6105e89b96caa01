"""What every reconcile writes (status, Events) and checks (who owns a name).

Order matters for a restart at any point. Status is written first, guarded by
the resourceVersion that was read, and only then are Events posted and objects
applied: a reconcile that loses the race (``Conflict``) has changed nothing, and
one cut off after its status write is completed by the next, whose actions
follow from that status (they are declarative). Events are posted only for a
status that was actually written, so no transition is announced twice.

Events expire (an hour by default), so every decision is also logged, with the
object as fields (``clipper.common.logs.about``): each status write with what it
changed, and each Event. A reconcile that changes nothing logs at DEBUG only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from clipper.common import api, logs
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


def about(raw: Obj) -> dict[str, Any]:
    """``extra`` for a log line about ``raw`` (see ``clipper.common.logs.about``)."""
    meta = raw["metadata"]
    return logs.about(raw.get("kind", ""), meta.get("namespace", ""), meta["name"])


def describe(raw: Obj) -> str:
    meta = raw["metadata"]
    return f"{raw.get('kind', '')} {meta.get('namespace', '')}/{meta['name']}"


_SCALARS = (
    "stableVersion",
    "candidateVersion",
    "shadowVersion",
    "trafficSummary",
    "readyModels",
    "endpoint",
)
"""Status fields a change of which is worth a log line (traffic is in trafficSummary;
times, generations and the app's per-model summaries are not)."""


def status_changes(old: Obj, new: Obj) -> list[str]:
    """What a status write changes, in words: conditions (status and reason),
    versions (phase and replicas), the canary step, and the fields in ``_SCALARS``."""
    changes = [
        f"{key} {old.get(key)} -> {new.get(key)}"
        for key in _SCALARS
        if old.get(key) != new.get(key)
    ]
    step = (old.get("rollout") or {}).get("step"), (new.get("rollout") or {}).get("step")
    if step[0] != step[1]:
        changes.append(f"canary step {step[0]} -> {step[1]}")
    versions = {v["version"]: v for v in old.get("versions") or []}
    for version in new.get("versions") or []:
        was = versions.pop(version["version"], {})
        for key in ("phase", "replicas", "readyReplicas"):
            if was.get(key) != version.get(key):
                changes.append(f"{version['version']} {key} {was.get(key)} -> {version.get(key)}")
    changes += [f"{gone} removed" for gone in versions]
    conditions = {c["type"]: c for c in old.get("conditions") or []}
    for condition in new.get("conditions") or []:
        was = conditions.get(condition["type"], {})
        if (was.get("status"), was.get("reason")) != (condition["status"], condition["reason"]):
            changes.append(f"{condition['type']} {condition['status']} ({condition['reason']})")
    return changes


async def write_status(ctx: Context, plural: str, raw: Obj, old: Status, new: Status) -> bool:
    """Replace the status of ``raw`` with ``new`` if it differs from ``old``; did it?

    A write is logged at INFO with what it changed; none, at DEBUG (a quiet
    cluster's log stays quiet)."""
    before, after = old.to_dict(), new.to_dict()
    if after == before:
        log.debug("%s: no change", describe(raw), extra=about(raw))
        return False
    await ctx.client.replace_status(plural, raw, after)
    changes = status_changes(before, after) or ["status refreshed"]
    log.info("%s: %s", describe(raw), "; ".join(changes), extra=about(raw))
    return True


async def post_events(ctx: Context, raw: Obj, events: Iterable[Event]) -> None:
    """Post ``events`` about ``raw``, each logged too (Events expire, logs are kept:
    a Warning at WARNING, the rest at INFO); a failure to post is logged, never fatal."""
    for event in events:
        level = logging.WARNING if event.type == "Warning" else logging.INFO
        log.log(level, "%s: %s: %s", describe(raw), event.reason, event.message, extra=about(raw))
        body = build_event(raw, event.type, event.reason, event.message, utcnow(), ctx.instance)
        try:
            await ctx.client.create(body)
        except KubeError as exc:
            log.warning(
                "could not post event %s on %s: %s", event.reason, describe(raw), exc,
                extra=about(raw),
            )  # fmt: skip


def applied(
    owner: api.ClipperApp | api.ModelDeployment, before: Obj | None, after: Obj
) -> str | None:
    """What an apply did to an object the owner had (``before``, as read in this
    reconcile; None if absent): "created", "updated" (its spec or labels differ:
    a rollout's change, or a repair of a hand edit), or None; logged at INFO."""
    if before is None or before["metadata"].get("uid") != after["metadata"].get("uid"):
        change = "created"
    elif (before.get("spec"), before["metadata"].get("labels")) != (
        after.get("spec"),
        after["metadata"].get("labels"),
    ):
        change = "updated"
    else:
        return None
    meta = owner.metadata
    log.info(
        "%s %s/%s: %s %s %s", owner.kind, meta.namespace, meta.name, change, after["kind"],
        after["metadata"]["name"], extra=logs.about(owner.kind, meta.namespace or "", meta.name),
    )  # fmt: skip
    return change


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
