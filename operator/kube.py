"""The operator's calls to the Kubernetes API: plain dicts in, plain dicts out.

Built on ``kubernetes_asyncio`` (kopf does the watching; this is for the reads and
writes a reconcile makes). Responses are parsed straight from JSON instead of
into the client's generated model classes: the builders produce dicts, the
observer reads dicts, and the typed view of our own kinds is
``clipper.common.api``.

Writes of objects the operator owns are server-side applies with one field
manager, ``clipper-operator``, and ``force``: the operator is the authority on
those fields, and applying an unchanged object writes nothing (no new
resourceVersion, no watch event). Status is replaced through the status
subresource with the resourceVersion that was read, so two writers (say, a
second operator replica) can never both advance a rollout: the second gets
``Conflict`` and reconciles again from what the first wrote.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from kubernetes_asyncio import client, config

from clipper.common import api
from clipper.operator import naming

log = logging.getLogger(__name__)

Obj = dict[str, Any]
APPLY = "application/apply-patch+yaml"


class KubeError(Exception):
    """An API call failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class Conflict(KubeError):
    """409: the object changed since it was read (or already exists)."""


async def client_configuration(kubeconfig: str | None = None) -> client.Configuration:
    """In-cluster credentials when running in a pod, else the kubeconfig
    (``kubeconfig``, ``$KUBECONFIG`` or ``~/.kube/config``)."""
    conf = client.Configuration()
    try:
        if kubeconfig:
            raise config.ConfigException("a kubeconfig was given")
        config.load_incluster_config(client_configuration=conf)
    except config.ConfigException:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=conf)
    return conf


async def _json(call: Any) -> Any:
    response = await call
    try:
        body = await response.read()
    finally:
        response.release()
    data = json.loads(body) if body else {}
    if 200 <= response.status < 300:
        return data
    message = data.get("message", body.decode(errors="replace")) if isinstance(data, dict) else ""
    cls = Conflict if response.status == 409 else KubeError
    raise cls(response.status, message)


_KINDS = {
    "Deployment": ("apps", "deployment"),
    "Service": ("core", "service"),
    "ServiceAccount": ("core", "service_account"),
    "Pod": ("core", "pod"),
    "Event": ("core", "event"),
    "Role": ("rbac", "role"),
    "RoleBinding": ("rbac", "role_binding"),
    "NetworkPolicy": ("networking", "network_policy"),
    "PodDisruptionBudget": ("policy", "pod_disruption_budget"),
}


class Kube:
    """One API client; ``close()`` it when done."""

    def __init__(self, configuration: client.Configuration) -> None:
        self.api = client.ApiClient(configuration)
        self._groups: dict[str, Any] = {
            "apps": client.AppsV1Api(self.api),
            "core": client.CoreV1Api(self.api),
            "rbac": client.RbacAuthorizationV1Api(self.api),
            "networking": client.NetworkingV1Api(self.api),
            "policy": client.PolicyV1Api(self.api),
        }
        self.custom = client.CustomObjectsApi(self.api)

    async def close(self) -> None:
        await self.api.close()

    def _method(self, kind: str, verb: str) -> Any:
        group, suffix = _KINDS[kind]
        return getattr(self._groups[group], f"{verb}_namespaced_{suffix}")

    # --- built-in kinds ------------------------------------------------------------

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return await _json(self._method(kind, "read")(name, namespace, _preload_content=False))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def select(self, kind: str, namespace: str, selector: str) -> list[Obj]:
        """The objects of ``kind`` in ``namespace`` that match the label ``selector``."""
        call = self._method(kind, "list")(
            namespace, label_selector=selector, _preload_content=False
        )
        return list((await _json(call)).get("items") or [])

    async def apply(self, obj: Obj) -> Obj:
        """Server-side apply ``obj`` (created if absent); the object as stored."""
        meta = obj["metadata"]
        call = self._method(obj["kind"], "patch")(
            meta["name"],
            meta["namespace"],
            obj,
            field_manager=naming.FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
            _preload_content=False,
        )
        return await _json(call)

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete (in the background); False if it was not there."""
        try:
            await _json(
                self._method(kind, "delete")(
                    name, namespace, propagation_policy="Background", _preload_content=False
                )
            )
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def create(self, obj: Obj) -> Obj:
        namespace = obj["metadata"]["namespace"]
        call = self._method(obj["kind"], "create")(namespace, obj, _preload_content=False)
        return await _json(call)

    # --- Clipper's kinds -------------------------------------------------------------

    async def get_custom(self, plural: str, namespace: str, name: str) -> Obj | None:
        try:
            call = self.custom.get_namespaced_custom_object(
                api.GROUP, api.VERSION, namespace, plural, name, _preload_content=False
            )
            return await _json(call)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def list_custom(self, plural: str, namespace: str) -> list[Obj]:
        call = self.custom.list_namespaced_custom_object(
            api.GROUP, api.VERSION, namespace, plural, _preload_content=False
        )
        return list((await _json(call)).get("items") or [])

    async def replace_status(self, plural: str, obj: Obj, status: Obj) -> Obj:
        """Write ``status`` on ``obj`` as read (its resourceVersion is the precondition)."""
        meta = obj["metadata"]
        body = {**obj, "status": status}
        call = self.custom.replace_namespaced_custom_object_status(
            api.GROUP, api.VERSION, meta["namespace"], plural, meta["name"], body,
            _preload_content=False,
        )  # fmt: skip
        return await _json(call)
