"""Kubernetes discovery: the routing table of one ClipperApp, followed live.

Three watches, each in the app's namespace, with the frontend's own read-only
ServiceAccount (the operator grants exactly these):

- the ClipperApp itself (a ``metadata.name`` field selector: the Role names it);
- the ModelDeployments, whose ``status.traffic`` the operator moves during a
  rollout;
- the EndpointSlices labelled ``clipper.dev/model``: the ready replicas of every
  version's headless Service.

Each watch is a ``reflector.Reflector`` (list, then watch; 410 Gone lists again;
other errors back off), run as a supervised task (``clipper.common.tasks``): a
reflector that dies anyway (a bug) is logged with its traceback, counted, and
restarted, so the table never silently stops following. Changes that arrive
together (a status write and the slices that follow it) are folded into one
table, and a table equal to the last one is not yielded again.

Rejections reach the ClipperApp's status as the condition ``RoutingRejected``
(True with the reason while the app's spec cannot be served as it stands -- by
the cluster view or by the frontend's own checks -- False once a table applies).
Only frontends write that type, by server-side apply on the status subresource
under their own field manager: ``status.conditions`` is a list-map keyed by type,
so the operator's Ready and Degraded are untouched, and the operator's own status
writes keep conditions it does not compute. Written on a change only, and once at
start, so that a replacement frontend clears what an older one reported.

This is the only frontend module that imports a Kubernetes client (an
import-linter contract): it makes the client and its list calls. The watching
(``reflector``) and the table (``cluster_view``) need none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from clipper.common import api
from clipper.common.cluster import LABEL_MODEL
from clipper.common.errors import ConfigError
from clipper.common.routing import RoutingTable
from clipper.common.tasks import TaskRegistry, supervise
from clipper.frontend.routing.discovery import Discovery
from clipper.frontend.routing.discovery.cluster_view import APP, MODELS, SLICES, ClusterView
from clipper.frontend.routing.discovery.reflector import Reflector

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


async def client_configuration() -> client.Configuration:
    """In-cluster credentials in a pod, else ``$KUBECONFIG`` or ``~/.kube/config``."""
    conf = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=conf)
    except config.ConfigException:
        await config.load_kube_config(client_configuration=conf)
    return conf


def own_namespace() -> str | None:
    """The pod's namespace, from its ServiceAccount mount (None outside a pod)."""
    try:
        return NAMESPACE_FILE.read_text().strip() or None
    except OSError:
        return None


CONDITION = "RoutingRejected"
"""The one ClipperApp condition frontends write (the operator writes the others)."""
FIELD_MANAGER = "clipper-frontend"
APPLY_PATCH = "application/apply-patch+yaml"
_NOTHING = object()


def rejected_condition(problem: str | None) -> dict[str, str]:
    """The ``RoutingRejected`` condition for ``problem`` (None: the app's spec applies)."""
    return {
        "type": CONDITION,
        "status": "True" if problem else "False",
        "reason": "InvalidRoutingTable" if problem else "RoutingApplied",
        "message": problem or "the frontend serves the app's current spec",
        "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class KubernetesDiscovery(Discovery):
    """The table of ClipperApp ``app`` in ``namespace``, from the Kubernetes API."""

    def __init__(
        self,
        app: str,
        namespace: str | None = None,
        configuration: client.Configuration | None = None,
        settle_s: float = 0.05,
        start_timeout_s: float = 30.0,
        tasks: TaskRegistry | None = None,
    ) -> None:
        namespace = namespace or own_namespace()
        if not namespace:
            raise ConfigError("no namespace given, and not running in a pod", "--kubernetes-app")
        self.app, self.namespace = app, namespace
        self.configuration = configuration
        self.settle_s, self.start_timeout_s = settle_s, start_timeout_s
        self.view = ClusterView(app)
        self.reflectors: list[Reflector] = []
        self.tasks = tasks
        self._changed = asyncio.Event()
        self._custom: client.CustomObjectsApi | None = None
        self._view_problem: str | None = None
        self._rejected: str | None = None
        self._published: str | object | None = _NOTHING

    def _sink(self, kind: str, event_type: str | None, payload: Any) -> None:
        if event_type is None:
            self.view.replace(kind, payload)
        else:
            self.view.apply(kind, event_type, payload)
        self._changed.set()

    def _reflectors(self, api_client: client.ApiClient) -> list[Reflector]:
        custom = client.CustomObjectsApi(api_client)
        slices = client.DiscoveryV1Api(api_client)
        ns = self.namespace

        def apps(**kw: Any) -> Any:
            return custom.list_namespaced_custom_object(
                api.GROUP, api.VERSION, ns, "clipperapps",
                field_selector=f"metadata.name={self.app}", **kw,
            )  # fmt: skip

        def models(**kw: Any) -> Any:
            return custom.list_namespaced_custom_object(
                api.GROUP, api.VERSION, ns, "modeldeployments", **kw
            )

        def endpoint_slices(**kw: Any) -> Any:
            return slices.list_namespaced_endpoint_slice(ns, label_selector=LABEL_MODEL, **kw)

        return [
            Reflector(APP, apps, self._sink),
            Reflector(MODELS, models, self._sink),
            Reflector(SLICES, endpoint_slices, self._sink),
        ]

    async def _all_listed(self) -> None:
        for reflector in self.reflectors:
            await reflector.listed.wait()

    async def _started(self) -> None:
        try:
            # Not a gather of the waits: cancelled, it logs an exception nobody retrieved.
            await asyncio.wait_for(self._all_listed(), self.start_timeout_s)
        except TimeoutError:
            raise ConfigError(
                f"could not list ClipperApp {self.app}, its ModelDeployments and EndpointSlices"
                f" in namespace {self.namespace} within {self.start_timeout_s:.0f}s"
                " (see the warnings above)",
                "kubernetes discovery",
            ) from None

    def _table(self) -> RoutingTable | None:
        try:
            table = self.view.table()
        except ConfigError as exc:
            log.error("app %s cannot be served as it stands, keeping its last table: %s",
                      self.app, exc)  # fmt: skip
            self._view_problem = str(exc)
            return None
        self._view_problem = None
        return table

    async def report(self, rejected: str | None) -> None:
        self._rejected = rejected
        await self._publish()

    async def _publish(self) -> None:
        """Set the app's ``RoutingRejected`` condition if it changed; a failure is logged
        and retried with the next change (the last table stays in force either way)."""
        problem = self._view_problem or self._rejected
        if self._custom is None or problem == self._published:
            return
        body = {
            "apiVersion": f"{api.GROUP}/{api.VERSION}",
            "kind": "ClipperApp",
            "metadata": {"name": self.app, "namespace": self.namespace},
            "status": {"conditions": [rejected_condition(problem)]},
        }
        try:
            patch: Any = self._custom.patch_namespaced_custom_object_status  # _content_type
            await patch(
                api.GROUP, api.VERSION, self.namespace, "clipperapps", self.app, body,
                field_manager=FIELD_MANAGER, force=True, _content_type=APPLY_PATCH,
            )  # fmt: skip
        except (client.ApiException, OSError) as exc:
            log.warning("could not report on ClipperApp %s's status: %s", self.app, exc)
            return
        self._published = problem

    async def watch(self) -> AsyncIterator[RoutingTable]:
        configuration = self.configuration or await client_configuration()
        async with client.ApiClient(configuration) as api_client:
            self.reflectors = self._reflectors(api_client)
            self._custom = client.CustomObjectsApi(api_client)
            tasks = [
                supervise("discovery_watch", r.run, registry=self.tasks) for r in self.reflectors
            ]
            try:
                await self._started()
                last = self._table() or RoutingTable()
                yield last
                while True:
                    await self._changed.wait()
                    await asyncio.sleep(self.settle_s)  # fold a burst into one table
                    self._changed.clear()
                    table = self._table()
                    if table is not None and table != last:
                        last = table
                        yield table
                    else:  # the view's verdict changed, or not: no new table to apply
                        await self._publish()
            finally:  # often while this task is being cancelled: cancel all, then wait
                self._custom = None
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*(task.task for task in tasks), return_exceptions=True)
