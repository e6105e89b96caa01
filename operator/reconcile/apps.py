"""Reconcile one ClipperApp: its frontend, the Service clients call, RBAC, status.

Like a ModelDeployment's reconcile, it observes first (the app's models, and each
child it owns as stored), writes the status, and only then applies every child:
a child that should exist and was not found is named in the conditions, then
recreated (see ``children``); one that someone edited is put back by the apply.

The frontend is deployed even while the app has a problem (a missing model, two
models with one name): it serves what it can, and fixing the app's spec takes
effect without a restart. The problem is the app's status: Ready False and
Degraded True with the reason, and a Warning Event when it appears.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clipper.common import api
from clipper.common.app_status import app_status
from clipper.common.rollout import Event
from clipper.common.state_condition import TYPE as STATE_CONDITION
from clipper.common.state_condition import set_state_condition
from clipper.operator import naming, validation
from clipper.operator.builders import (
    build_frontend_deployment,
    build_frontend_rbac,
    build_frontend_service,
    build_model_network_policy,
    frontend_endpoint,
)
from clipper.operator.context import APPS, MODELS, Context
from clipper.operator.fleet import read_state_reports
from clipper.operator.reconcile.children import (
    Child,
    apply_child,
    mark_missing,
    record_repairs,
)
from clipper.operator.reconcile.writes import (
    post_events,
    report_problem,
    utcnow,
    write_status,
)

Obj = dict[str, Any]


GOOD_WHEN_TRUE = frozenset({"Ready", STATE_CONDITION})
"""The app's conditions that are good news when True (Degraded is bad news)."""
RECOVERED = {"Ready": "Ready", STATE_CONDITION: "StateBackendReachable"}
"""The Normal Event's reason when a condition turns good (else ``Recovered``)."""
ALWAYS_NEWS = frozenset({"Degraded", STATE_CONDITION})
"""Conditions whose first sight is a Warning when it is a problem."""


def condition_events(old: list[api.Condition], new: list[api.Condition]) -> list[Event]:
    """The Event for a change of the app's conditions, if any.

    A condition seen for the first time is news only when it is a problem: a new
    app that is not ready *yet* is not worth a Warning. One transition is one
    Event, although it usually turns both conditions (a lost model makes Ready
    False and Degraded True): a problem wins over good news, and the Degraded
    condition, which names the cause, over Ready; good news is "Ready" when the
    app became ready, "StateBackendReachable" when the frontends reach their state
    backend again, "Recovered" when only Degraded cleared. Unknown (no frontend
    answered) is no news, and a condition known for the first time after it is
    treated as seen for the first time.
    """
    before = {c.type: c for c in old if c.status != "Unknown"}
    warnings, normals = [], []
    for now in sorted(new, key=lambda c: c.type != "Degraded"):
        prior = before.get(now.type)
        if prior is not None and (prior.status, prior.reason) == (now.status, now.reason):
            continue
        if now.status == "Unknown":
            continue
        good = (now.status == "True") == (now.type in GOOD_WHEN_TRUE)
        if good and prior is not None:
            reason = RECOVERED.get(now.type, "Recovered")
            normals.append(Event("Normal", reason, now.message))
        elif not good and (prior is not None or now.type in ALWAYS_NEWS):
            warnings.append(Event("Warning", now.reason, now.message))
    ready = [event for event in normals if event.reason == "Ready"]
    return (warnings or ready or normals)[:1]


def _models(raw_models: list[Obj]) -> list[api.ModelDeployment]:
    models = []
    for raw in raw_models:
        md, _ = validation.typed(raw)
        if isinstance(md, api.ModelDeployment):
            models.append(md)
    return models


def _with_problems(
    status: api.ClipperAppStatus,
    before: list[api.Condition],
    problems: list[validation.Problem],
    generation: int | None,
) -> api.ClipperAppStatus:
    """``status`` not Ready and Degraded for ``problems``, transition times kept from
    ``before`` (the stored conditions) where the status did not change."""
    if not problems:
        return status
    reason = problems[0].reason
    message = "; ".join(p.message for p in problems)
    for kind, value in (("Ready", "False"), ("Degraded", "True")):
        api.set_condition(status.conditions, kind, value, reason, message, utcnow(), generation)  # type: ignore[arg-type]
        old, new = api.find_condition(before, kind), api.find_condition(status.conditions, kind)
        if old is not None and new is not None and old.status == new.status:
            new.last_transition_time = old.last_transition_time
    return status


def _children(ctx: Context, app: api.ClipperApp, models: list[api.ModelDeployment]) -> list[Obj]:
    """Everything the app owns: RBAC, frontend Deployment and Service, NetworkPolicy."""
    objects = [
        *build_frontend_rbac(app),
        build_frontend_deployment(app, ctx.settings),
        build_frontend_service(app),
    ]
    # Admit only the app's frontends to its models' pods (see builders/network.py).
    policy = build_model_network_policy(app, app.select_models(models), ctx.settings)
    return objects if policy is None else [*objects, policy]


Found = dict[tuple[str, str], Obj | None]
"""Each child as stored (None: absent), by (kind, name)."""


def _key(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


async def _observe(
    ctx: Context, app: api.ClipperApp, objects: list[Obj]
) -> tuple[Found, validation.Problem | None]:
    """Each of ``objects`` as stored; or the problem of a name that someone else holds."""
    found: Found = {}
    for obj in objects:
        kind, name = _key(obj)
        existing = await ctx.client.get(kind, app.metadata.namespace or "", name)
        problem = validation.name_conflict(existing, app)
        if problem is not None:
            return found, problem
        found[kind, name] = existing
    return found, None


def _missing(app: api.ClipperApp, objects: list[Obj], found: Found) -> list[Child]:
    """The children that should already exist but were not found: all of them once the
    app has been reconciled (its status has an endpoint), the NetworkPolicy once its
    status has found a model. Only the NetworkPolicy is not needed to serve."""
    if app.status.endpoint is None:
        return []
    had_models = any(m.model_name for m in app.status.models)
    missing = []
    for obj in objects:
        kind, name = _key(obj)
        policy = kind == "NetworkPolicy"
        if found.get((kind, name)) is None and (had_models or not policy):
            missing.append(Child(kind, name, serving=not policy))
    return missing


async def _state_condition(
    ctx: Context, app: api.ClipperApp, status: api.ClipperAppStatus, now: datetime
) -> None:
    """``StateBackendReachable`` from what the app's frontend pods report (a shared
    backend only: ``memory`` cannot be unreachable, and no pod is read for it)."""
    shared = app.spec.state.shared
    pods, reports = await read_state_reports(ctx, app) if shared else (0, [])
    backend = app.spec.state.backend
    set_state_condition(status.conditions, backend, pods, reports, now, app.metadata.generation)


def _frontend_ready(deployment: Obj) -> bool:
    status = deployment.get("status") or {}
    return int(status.get("availableReplicas") or 0) > 0


async def reconcile_app(ctx: Context, namespace: str, name: str) -> float | None:
    """One pass over ClipperApp ``namespace/name``."""
    raw = await ctx.client.get_custom(APPS, namespace, name)
    if raw is None or raw["metadata"].get("deletionTimestamp"):
        return None
    generation = raw["metadata"].get("generation")
    app, problem = validation.typed(raw)
    objects: list[Obj] = []
    models: list[api.ModelDeployment] = []
    found: Found = {}
    if isinstance(app, api.ClipperApp) and problem is None:
        models = _models(await ctx.client.list_custom(MODELS, namespace))
        objects = _children(ctx, app, models)
        found, problem = await _observe(ctx, app, objects)
    if problem is not None or not isinstance(app, api.ClipperApp):
        status = api.ClipperAppStatus.model_validate(raw.get("status") or {})
        problem = problem or validation.Problem("InvalidSpec", "not a ClipperApp")
        await report_problem(ctx, APPS, raw, status, problem, generation)
        return None
    now = utcnow()
    frontend = found.get(("Deployment", naming.frontend_name(app.metadata.name)))
    ready = _frontend_ready(frontend or {})
    status = app_status(app, models, frontend_endpoint(app), ready, now)
    await _state_condition(ctx, app, status, now)
    problems = validation.app_problems(app, models)
    status = _with_problems(status, app.status.conditions, problems, generation)
    missing = _missing(app, objects, found)
    mark_missing(status.conditions, missing, now, generation)
    if await write_status(ctx, APPS, raw, app.status, status):
        await post_events(ctx, raw, condition_events(app.status.conditions, status.conditions))
    for obj in objects:
        if (child := await apply_child(ctx, app, obj, found.get(_key(obj)))) is not None:
            missing.append(child)
    await record_repairs(ctx, raw, missing)
    # Nothing in the cluster changes when Redis goes away: read the frontends again soon.
    return ctx.settings.state_check_seconds if app.spec.state.shared else None
