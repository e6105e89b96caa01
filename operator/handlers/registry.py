"""The handlers: lifecycle (startup, cleanup), one index, and watch events.

What each watch event enqueues:

=====================================  =============================================
event on                               reconciles
=====================================  =============================================
ClipperApp                             that app
ModelDeployment                        that model, and every app in its namespace
                                       (an app's status summarises its models)
what the operator creates, and pods     the model (``clipper.dev/model``) or app
(ours, by label; ``watched.WATCHED``)  (``clipper.dev/app``) it belongs to
=====================================  =============================================

The operator's children (Deployments, Services, ServiceAccounts, Roles,
RoleBindings, NetworkPolicies: the table in ``clipper.operator.watched``) and pods
are watched with a server-side label selector (see ``kopf_settings``), so the
operator never receives events for objects that are not its own. A child deleted
or edited by someone else reconciles its owner at once, which puts it back: the
resync is only a safety net. The operator's own writes come back as events too;
they cost one reconcile that finds nothing to change (applying an unchanged
object writes nothing, so no further event). Pod events matter for crash loops,
which change no Deployment field. All of these are coalesced for a moment, as a
rollout makes them in bursts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from clipper.common import api
from clipper.common.tasks import Supervised
from clipper.operator import naming
from clipper.operator.context import APPS, MODELS, Context, Key
from clipper.operator.handlers.dispatch import dispatch
from clipper.operator.handlers.supervision import check_tasks, start_queue
from clipper.operator.kopf_settings import configure
from clipper.operator.kube import Kube, client_configuration
from clipper.operator.watched import WATCHED

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.2
"""How long a reconcile caused by another object's event (a child, a pod, a
model of the app) waits for more of them, so that a burst costs one reconcile."""

MANAGED = {naming.MANAGED_BY: naming.COMPONENT}


def _track(ctx: Context, key: Key, event_type: str) -> None:
    """Remember which objects exist (the resync only revisits those), then enqueue."""
    if event_type == "DELETED":
        ctx.live.discard(key)
    else:
        ctx.live.add(key)
    ctx.queue.add(key)


def build_registry(ctx: Context) -> kopf.OperatorRegistry:
    """Every handler of the operator, bound to ``ctx``."""
    registry = kopf.OperatorRegistry()
    queues: list[Supervised] = []

    @kopf.on.startup(id="startup", registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, ctx.settings, ctx.instance)
        ctx.kube = Kube(await client_configuration())
        queues.append(start_queue(ctx, lambda key: dispatch(ctx, key)))

    @kopf.on.probe(id="tasks", registry=registry)
    async def tasks(**_: Any) -> dict[str, int]:
        # Behind kopf's liveness endpoint: fails (HTTP 500) once the queue is dead.
        return check_tasks(ctx)

    @kopf.on.login(id="login", registry=registry)
    async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same client library and credentials as the reconciles' API client:
        # in a pod its ServiceAccount, else $KUBECONFIG or ~/.kube/config.
        return await kopf.login_via_async_client(**kwargs)

    @kopf.on.cleanup(id="cleanup", registry=registry)
    async def cleanup(**_: Any) -> None:
        for queue in queues:
            await queue.stop()
        if ctx.kube is not None:
            await ctx.kube.close()

    @kopf.index(api.GROUP, api.VERSION, APPS, id="apps_by_namespace", registry=registry)
    async def apps_by_namespace(namespace: str | None, name: str, **_: Any) -> dict[str, str]:
        return {namespace or "": name}

    @kopf.on.event(api.GROUP, api.VERSION, APPS, id="app_event", registry=registry)
    async def app_event(namespace: str | None, name: str, type: str, **_: Any) -> None:
        _track(ctx, (APPS, namespace or "", name), type)

    @kopf.on.event(api.GROUP, api.VERSION, MODELS, id="model_event", registry=registry)
    async def model_event(namespace: str | None, name: str, type: str, **kwargs: Any) -> None:
        namespace = namespace or ""
        _track(ctx, (MODELS, namespace, name), type)
        apps: kopf.Index[str, str] = kwargs["apps_by_namespace"]
        for app in apps.get(namespace, []):
            ctx.queue.add((APPS, namespace, app), COALESCE_SECONDS)

    async def child_event(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
        owner = owner_key(namespace or "", labels)
        if owner is not None:
            ctx.queue.add(owner, COALESCE_SECONDS)

    for watched in WATCHED:
        kopf.on.event(
            *watched.resource,
            id=f"{watched.plural}_event",
            labels=MANAGED,
            registry=registry,
        )(child_event)

    return registry


def owner_key(namespace: str, labels: Mapping[str, str]) -> Key | None:
    """The model or app that an object with ``labels`` belongs to, if any."""
    if naming.LABEL_MODEL in labels:
        return (MODELS, namespace, labels[naming.LABEL_MODEL])
    if naming.LABEL_APP in labels:
        return (APPS, namespace, labels[naming.LABEL_APP])
    return None
