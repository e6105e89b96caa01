"""The operator's read of the frontends' per-version counters, for rollout analysis.

Only while a ModelDeployment's rollout is being judged (a candidate, and the
Canary strategy with analysis enabled, or the Shadow strategy, whose sequential
test reads the frontends' paired counts) does a reconcile read the frontends: every ready
frontend pod of every ClipperApp in the namespace that serves the model, each
at its pod IP on the frontend's HTTP port (``GET /v1/stats/versions``, through
``clipper.common.fleet_stats``, the path local mode uses too). Pods, not the
app's Service: a Service answers from one pod, and the analysis needs each
frontend's counters (a fleet of frontends, with counter resets told apart by
each one's instance id). Frontends of several apps over one model all count.

A read that reaches no frontend gives a fleet with no reports: the machine
judges nothing (a step ending so is NotJudged), never on numbers it does not
have, and asks to be called again soon, to read once more.

The same read, of one app's frontend pods, gives the app's
``StateBackendReachable`` condition (``clipper.common.state_condition``): each
document also says whether that frontend reaches its selection-state backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiohttp

from clipper.common import api
from clipper.common.fleet_stats import fleet_of, read_documents
from clipper.common.rollout.analysis import Fleet
from clipper.common.state_condition import StateReport, reports_of
from clipper.operator import naming
from clipper.operator.context import APPS, Context

Obj = dict[str, Any]


def judging(md: api.ModelDeployment) -> bool:
    """Whether a rollout of ``md`` is judged on the frontends' counters (and they are
    worth reading): a canary under analysis, or a Shadow candidate (always)."""
    st, rollout = md.status, md.spec.rollout
    if st.candidate_version is None or st.stable_version is None:
        return False
    if rollout.strategy == "Shadow":
        return True
    return rollout.strategy == "Canary" and rollout.analysis.enabled


def serving_apps(md: api.ModelDeployment, apps: Iterable[Obj]) -> list[str]:
    """The names of the ClipperApps (as stored) that select ``md``."""
    names = []
    for raw in apps:
        try:
            app = api.ClipperApp.model_validate(raw)
        except ValueError:  # an invalid app serves nothing; its own reconcile says why
            continue
        if app.select_models([md]):
            names.append(app.metadata.name)
    return names


def http_port(pod: Obj) -> int:
    """The port of the pod's container port named ``http`` (the frontend's REST port)."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == "http" and port.get("containerPort"):
                return int(port["containerPort"])
    return naming.FRONTEND_HTTP_PORT


def frontend_urls(pods: Iterable[Obj]) -> list[str]:
    """The REST base URL of every ready frontend pod that has an IP: its IP, and its
    container port named ``http``."""
    urls = []
    for pod in pods:
        status = pod.get("status") or {}
        ip = status.get("podIP")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if ip and ready and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            host = f"[{ip}]" if ":" in ip else ip
            urls.append(f"http://{host}:{http_port(pod)}")
    return urls


async def app_frontend_urls(ctx: Context, namespace: str, app: str) -> list[str]:
    """The REST base URLs of app ``app``'s ready frontend pods."""
    selector = f"{naming.LABEL_APP}={app},{naming.PART}=frontend"
    return frontend_urls(await ctx.client.select("Pod", namespace, selector))


async def read_frontends(urls: list[str]) -> list[dict[str, Any]]:
    """The ``/v1/stats/versions`` document of every frontend at ``urls`` that answers."""
    if not urls:
        return []
    async with aiohttp.ClientSession() as session:
        return await read_documents(session, urls)


async def read_fleet(ctx: Context, md: api.ModelDeployment) -> Fleet | None:
    """What the frontends serving ``md`` counted, while its canary is judged; else None."""
    if not judging(md):
        return None
    namespace = md.metadata.namespace or ""
    urls = []
    for app in serving_apps(md, await ctx.client.list_custom(APPS, namespace)):
        urls += await app_frontend_urls(ctx, namespace, app)
    return fleet_of(await read_frontends(urls), md.model_name)


async def read_state_reports(ctx: Context, app: api.ClipperApp) -> tuple[int, list[StateReport]]:
    """How many ready frontend pods ``app`` has, and what those that answered report of
    their selection-state backend (the same read as ``read_fleet``'s)."""
    urls = await app_frontend_urls(ctx, app.metadata.namespace or "", app.metadata.name)
    return len(urls), reports_of(await read_frontends(urls))
