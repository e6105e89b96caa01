"""Reconcile one ModelDeployment: observe its versions, run the rollout, apply the plan.

1. Read the ModelDeployment, its version Deployments, Services and pods, and
   check that the names its versions need are free (``NameConflict`` otherwise).
2. Observe each version (``observe``); while a canary is judged, read what the
   app's frontends counted per version (``clipper.operator.fleet``); run
   ``clipper.common.rollout.reconcile``.
3. Write the plan's status (traffic included: the frontends follow it; a child that
   should exist and was not found is named in its conditions, see ``children``),
   post its Events, then apply its actions: ``EnsureVersion`` applies the version's
   Deployment and headless Service (and its PodDisruptionBudget while it runs more
   than one replica), ``ScaleVersion`` scales an existing one to zero (with its
   recorded template, so it comes back as it was), ``DeleteVersion`` deletes them
   all. Applying re-creates a deleted child and puts back what someone edited of
   one; a ``Repaired`` Event names each child re-created.
4. Return ``requeue_after``, so that a canary pause, a drain or a deadline comes
   due without any change to watch.
"""

from __future__ import annotations

from typing import Any

from clipper.common import api, rollout
from clipper.operator import naming, validation
from clipper.operator.builders import (
    build_model_deployment,
    build_model_disruption_budget,
    build_model_service,
    template_hash,
    wants_budget,
)
from clipper.operator.context import MODELS, Context
from clipper.operator.fleet import read_fleet
from clipper.operator.observe import observe_versions
from clipper.operator.reconcile.children import (
    Child,
    apply_child,
    mark_missing,
    record_repairs,
)
from clipper.operator.reconcile.writes import (
    name_problem,
    owned,
    post_events,
    report_problem,
    utcnow,
    write_status,
)

Obj = dict[str, Any]


class _Owned:
    """What exists of one ModelDeployment's versions, by version."""

    def __init__(
        self, deployments: list[Obj], services: list[Obj], budgets: list[Obj], pods: list[Obj]
    ) -> None:
        self.deployments = {_version(d): d for d in deployments}
        self.services = {_version(s): s for s in services}
        self.budgets = {_version(b): b for b in budgets}
        self.pods = pods


def _version(obj: Obj) -> str:
    return str(obj["metadata"].get("labels", {}).get(naming.LABEL_VERSION, ""))


async def _read_owned(ctx: Context, md: api.ModelDeployment) -> _Owned:
    namespace, uid = md.metadata.namespace or "", md.metadata.uid
    selector = f"{naming.LABEL_MODEL}={md.metadata.name}"
    deployments = owned(await ctx.client.select("Deployment", namespace, selector), uid)
    services = owned(await ctx.client.select("Service", namespace, selector), uid)
    budgets = owned(await ctx.client.select("PodDisruptionBudget", namespace, selector), uid)
    pods = await ctx.client.select("Pod", namespace, selector) if deployments else []
    return _Owned(deployments, services, budgets, pods)


async def _names_taken(
    ctx: Context, md: api.ModelDeployment, have: _Owned
) -> validation.Problem | None:
    """A version name (spec.version's or a known version's) that someone else owns."""
    versions = {md.spec.version, *(v.version for v in md.status.versions)}
    for version in sorted(versions):
        name = naming.version_name(md.metadata.name, version)
        for kind, mine in (("Deployment", have.deployments), ("Service", have.services)):
            if version not in mine and (problem := await name_problem(ctx, md, kind, name)):
                return problem
    return None


def _missing(md: api.ModelDeployment, plan: rollout.Plan, have: _Owned) -> list[Child]:
    """The Deployments, Services and PodDisruptionBudgets that the plan keeps and that
    should already exist (their version was in the status read, a budget with the
    replicas it had there), but were not found. A budget protects, it does not serve."""
    known = {v.version for v in md.status.versions}
    serving = {t.version for t in plan.status.traffic if t.weight > 0}
    missing = []
    for action in plan.actions:
        version = action.version
        if isinstance(action, rollout.DeleteVersion) or version not in known:
            continue
        name, up = naming.version_name(md.metadata.name, version), version in serving
        ensured = isinstance(action, rollout.EnsureVersion)
        if ensured and version not in have.deployments:
            missing.append(Child("Deployment", name, up))
        if version not in have.services and (ensured or version in have.deployments):
            missing.append(Child("Service", name, up))
        had = md.status.version(version)
        budget = ensured and had is not None and wants_budget(had.replicas)
        if budget and version in have.deployments and version not in have.budgets:
            missing.append(Child("PodDisruptionBudget", name, serving=False))
    return missing


async def _ensure(
    ctx: Context,
    md: api.ModelDeployment,
    version: str,
    template: api.VersionTemplate,
    replicas: int,
    have: _Owned,
) -> list[Child]:
    """Apply the version's Deployment, Service and (above one replica) its
    PodDisruptionBudget; those that this re-created after they were read (deleted
    meanwhile: see ``children.recreated``)."""
    raced = []
    objects = [
        (build_model_deployment(md, version, template, replicas, ctx.settings),
         have.deployments.get(version)),
        (build_model_service(md, version), have.services.get(version)),
    ]  # fmt: skip
    if wants_budget(replicas):
        objects.append((build_model_disruption_budget(md, version), have.budgets.get(version)))
    elif version in have.budgets:
        name = naming.version_name(md.metadata.name, version)
        await ctx.client.delete("PodDisruptionBudget", md.metadata.namespace or "", name)
    for obj, observed in objects:
        if (child := await apply_child(ctx, md, obj, observed)) is not None:
            raced.append(child)
    return raced


async def _apply(
    ctx: Context, md: api.ModelDeployment, plan: rollout.Plan, have: _Owned
) -> list[Child]:
    """Apply ``plan``'s actions; the children re-created that were read as present."""
    namespace = md.metadata.namespace or ""
    raced = []
    for action in plan.actions:
        if isinstance(action, rollout.EnsureVersion):
            raced += await _ensure(ctx, md, action.version, action.template, action.replicas, have)
        elif isinstance(action, rollout.ScaleVersion):
            entry = plan.status.version(action.version)
            if action.version in have.deployments and entry is not None:
                raced += await _ensure(
                    ctx, md, action.version, entry.template, action.replicas, have
                )
        else:
            name = naming.version_name(md.metadata.name, action.version)
            for kind, mine in (
                ("Deployment", have.deployments),
                ("Service", have.services),
                ("PodDisruptionBudget", have.budgets),
            ):
                if action.version in mine:
                    await ctx.client.delete(kind, namespace, name)
    return raced


def _scale_status(md: api.ModelDeployment, status: api.ModelDeploymentStatus) -> None:
    """What the scale subresource reads: every version's replicas, and their selector.

    Every version's, not spec.version's alone: an autoscaler sizes spec.replicas for
    the model's whole load, which during a canary the old version still mostly
    carries (the candidate's pods alone would look idle and be scaled down).
    """
    status.replicas = sum(v.replicas for v in status.versions)
    status.selector = f"{naming.LABEL_MODEL}={md.metadata.name}"


async def reconcile_model(ctx: Context, namespace: str, name: str) -> float | None:
    """One pass over ModelDeployment ``namespace/name``; seconds until the next, or None."""
    raw = await ctx.client.get_custom(MODELS, namespace, name)
    if raw is None or raw["metadata"].get("deletionTimestamp"):
        return None  # gone: the garbage collector removes what it owned
    generation = raw["metadata"].get("generation")
    md, problem = validation.typed(raw)
    if isinstance(md, api.ModelDeployment) and problem is None:
        have = await _read_owned(ctx, md)
        problem = await _names_taken(ctx, md, have)
    if problem is not None or not isinstance(md, api.ModelDeployment):
        status = api.ModelDeploymentStatus.model_validate(raw.get("status") or {})
        problem = problem or validation.Problem("InvalidSpec", "not a ModelDeployment")
        await report_problem(ctx, MODELS, raw, status, problem, generation)
        return None
    hashes = {v.version: template_hash(v.template) for v in md.status.versions}
    observed = observe_versions(have.deployments.values(), have.pods, hashes)
    now = utcnow()
    fleet = await read_fleet(ctx, md)
    plan = rollout.reconcile(md.spec, md.status, observed, now, generation, fleet)
    _scale_status(md, plan.status)
    missing = _missing(md, plan, have)
    status = plan.status.model_copy(deep=True)
    mark_missing(status.conditions, missing, now, generation)
    if await write_status(ctx, MODELS, raw, md.status, status):
        await post_events(ctx, raw, plan.events)
    raced = await _apply(ctx, md, plan, have)
    await record_repairs(ctx, raw, [*missing, *raced])
    return plan.requeue_after
