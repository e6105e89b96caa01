"""What installs the operator in a cluster: CRDs, its RBAC and its Deployment.

``clipper operator manifests | kubectl apply -f -`` prints these. The RBAC is the
operator's whole footprint, and it follows where the operator watches:

- ``--namespace a --namespace b`` (exact names): a Role and a RoleBinding in each
  watched namespace, so the operator can touch nothing elsewhere; those namespaces
  must exist before the manifests are applied. The only cluster-wide grant is
  reading CRDs and namespaces (a ClusterRole
  ``clipper-operator:<install namespace>:discovery``): both are cluster-scoped,
  and kopf watches them to notice its resources being installed or removed and
  which watched namespaces exist;
- no namespace, or a glob such as ``team-*`` (matching namespaces that do not
  exist yet): a ClusterRole ``clipper-operator`` and its ClusterRoleBinding, with
  the namespaced rules, the same reads of CRDs and namespaces, and kopf's
  cluster-wide peering objects.

The namespaced rules, each for a call the operator really makes (see ``kube.py``):

- read ClipperApps and ModelDeployments, and *update* (replace) their status: a
  status write carries the resourceVersion that was read, so it is an update,
  never an apply. ``update`` on their ``finalizers`` subresource: clusters with
  OwnerReferencesPermissionEnforcement require it before an owner reference may
  block its owner's deletion;
- Deployments, Services, ServiceAccounts, Roles, RoleBindings and NetworkPolicies
  are only ever server-side applied (``patch``; Kubernetes also checks ``create``
  when an apply creates the object), read back (``get``, ``list``), watched
  (``watch``: a deleted or edited one is put back at once, see
  ``clipper.operator.watched``) and, for a retired version's Deployment and
  Service, deleted. Never ``update``;
- read pods (readiness, crash loops); post Events (kopf's and its own);
- read EndpointSlices: the frontends' Roles grant that, and Kubernetes lets one
  grant only what one holds;
- kopf's namespaced peering objects (only used with ``--peering``).

The Deployment runs one replica with the ``Recreate`` strategy (standalone, see
``kopf_settings``), as a non-root user with a read-only root filesystem (only
``/tmp``, a small bounded emptyDir, is writable), with kopf's liveness endpoint as
probe. helm/clipper renders the same objects (tests/helm/test_one_source.py
compares them).
"""

from __future__ import annotations

from typing import Any

import yaml

from clipper.common import api
from clipper.common.api import crds
from clipper.operator import naming
from clipper.operator.builders.meta import CONTAINER_SECURITY, POD_SECURITY
from clipper.operator.settings import OperatorSettings

NAME = "clipper-operator"
READ = ["get", "list", "watch"]
APPLY = ["get", "list", "create", "patch"]
"""Server-side apply (``patch``, plus ``create`` for an apply that creates) and reads."""
LIVENESS_PORT = 8080
TMP_SIZE = "64Mi"
"""The one writable path (``/tmp``, the images' ``HOME``): the root filesystem is
read-only, and a client library that writes a temporary file still finds room."""
RBAC = "rbac.authorization.k8s.io"
RBAC_V1 = f"{RBAC}/v1"


def _rule(group: str | list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    groups = [group] if isinstance(group, str) else group
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def namespaced_rules() -> list[dict[str, Any]]:
    """What the operator does in a namespace it watches (see the module docstring)."""
    kinds = ["clipperapps", "modeldeployments"]
    return [
        _rule(api.GROUP, kinds, READ),
        _rule(api.GROUP, [f"{k}/status" for k in kinds], ["get", "update"]),
        # Granted on, never used: each frontend's Role patches its own app's status
        # (the RoutingRejected condition), and a Role may grant only what its author holds.
        _rule(api.GROUP, ["clipperapps/status"], ["patch"]),
        _rule(api.GROUP, [f"{k}/finalizers" for k in kinds], ["update"]),
        _rule("apps", ["deployments"], [*APPLY, "watch", "delete"]),
        _rule("", ["services"], [*APPLY, "watch", "delete"]),
        _rule("", ["serviceaccounts"], [*APPLY, "watch"]),
        _rule(RBAC, ["roles", "rolebindings"], [*APPLY, "watch"]),
        _rule("networking.k8s.io", ["networkpolicies"], [*APPLY, "watch"]),
        _rule("policy", ["poddisruptionbudgets"], [*APPLY, "watch", "delete"]),
        _rule("", ["pods"], READ),
        _rule(["", "events.k8s.io"], ["events"], ["create", "patch"]),
        _rule("discovery.k8s.io", ["endpointslices"], READ),
        _rule("kopf.dev", ["kopfpeerings"], ["get", "list", "watch", "patch"]),
    ]


def discovery_rules() -> list[dict[str, Any]]:
    """Cluster-scoped reads kopf needs in every mode, names only, no workloads."""
    return [
        # kopf watches CRDs, to notice ClipperApps and ModelDeployments being
        # installed or removed while it runs.
        _rule("apiextensions.k8s.io", ["customresourcedefinitions"], READ),
        # kopf watches namespaces even for exact names (it serves those that exist,
        # and resolves globs); without this it retries for ~30 s at start, then
        # assumes they exist and logs 403s.
        _rule("", ["namespaces"], READ),
    ]


def operator_rules() -> list[dict[str, Any]]:
    """The ClusterRole rules of the cluster-wide mode."""
    return [
        *namespaced_rules(),
        *discovery_rules(),
        _rule("kopf.dev", ["clusterkopfpeerings"], ["get", "list", "watch", "patch"]),
    ]


def watched_namespaces(settings: OperatorSettings) -> tuple[str, ...]:
    """The namespaces that get Roles; empty for the cluster-wide mode (none, or a glob)."""
    if any(set(ns) & set("*?[") for ns in settings.namespaces):
        return ()
    return settings.namespaces


def _binding(kind: str, name: str, account_ns: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Binds the operator's ServiceAccount (in ``account_ns``) to Role/ClusterRole ``name``."""
    return {
        "apiVersion": RBAC_V1,
        "kind": f"{kind}Binding",
        "metadata": {"name": name, **meta},
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": account_ns}],
    }


def build_operator_rbac(
    namespace: str, settings: OperatorSettings | None = None
) -> list[dict[str, Any]]:
    """The operator's ServiceAccount in ``namespace`` and what it may do (see above)."""
    labels = {naming.NAME: NAME, naming.PART_OF: "clipper"}
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
    }
    watched = watched_namespaces(settings or OperatorSettings())
    if not watched:
        meta = {"name": NAME, "labels": labels}
        role = {"apiVersion": RBAC_V1, "kind": "ClusterRole", "metadata": meta}
        binding = _binding("ClusterRole", NAME, namespace, {"labels": labels})
        return [account, {**role, "rules": operator_rules()}, binding]
    crd_name = f"{NAME}:{namespace}:discovery"
    objects: list[dict[str, Any]] = [
        account,
        {
            "apiVersion": RBAC_V1,
            "kind": "ClusterRole",
            "metadata": {"name": crd_name, "labels": labels},
            "rules": discovery_rules(),
        },
        _binding("ClusterRole", crd_name, namespace, {"labels": labels}),
    ]
    for ns in watched:
        meta = {"name": NAME, "namespace": ns, "labels": labels}
        objects.append(
            {"apiVersion": RBAC_V1, "kind": "Role", "metadata": meta, "rules": namespaced_rules()}
        )
        objects.append(_binding("Role", NAME, namespace, {"namespace": ns, "labels": labels}))
    return objects


def _env(settings: OperatorSettings) -> list[dict[str, Any]]:
    env = [
        {"name": "CLIPPER_OPERATOR_MODEL_IMAGE", "value": settings.model_image},
        {"name": "CLIPPER_OPERATOR_MODEL_IMAGE_CUDA", "value": settings.model_image_cuda},
        {"name": "CLIPPER_OPERATOR_FRONTEND_IMAGE", "value": settings.frontend_image},
        {"name": "CLIPPER_OPERATOR_IMAGE_PULL_POLICY", "value": settings.image_pull_policy},
        {"name": "CLIPPER_OPERATOR_NAMESPACES", "value": ",".join(settings.namespaces)},
        {
            "name": "CLIPPER_OPERATOR_LIVENESS_ENDPOINT",
            "value": f"http://0.0.0.0:{LIVENESS_PORT}/healthz",
        },
    ]
    return [*env, {"name": "CLIPPER_LOG_JSON", "value": "1"}]


def build_operator_deployment(namespace: str, settings: OperatorSettings) -> dict[str, Any]:
    """The operator's Deployment: one replica, replaced (never overlapped) on update."""
    labels = {naming.NAME: NAME, naming.PART_OF: "clipper"}
    container = {
        "name": "operator",
        "image": settings.frontend_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["clipper"],
        "args": ["operator"],
        "env": _env(settings),
        "ports": [{"name": "healthz", "containerPort": LIVENESS_PORT}],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "healthz"},
            "periodSeconds": 15,
            "timeoutSeconds": 5,
            "failureThreshold": 4,
        },
        # Ready once kopf serves its probe: its tasks (the reconcile queue) are up and
        # it has its watches; `helm install --wait` and `kubectl rollout status` wait
        # for that, not for a process that has merely started.
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": "healthz"},
            "periodSeconds": 5,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": {**CONTAINER_SECURITY, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": NAME,
                    "containers": [container],
                    "securityContext": POD_SECURITY,
                    "terminationGracePeriodSeconds": 40,
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}}],
                },
            },
        },
    }


class _Plain(yaml.SafeDumper):
    """Writes shared parts (the CRDs reuse field schemas) in full, not as aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def install_manifests(namespace: str, settings: OperatorSettings) -> str:
    """Everything, as one multi-document YAML stream, in the order to apply it."""
    objects: list[dict[str, Any]] = [crds.crd(kind) for kind in crds.FILES]
    objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    objects += build_operator_rbac(namespace, settings)
    objects.append(build_operator_deployment(namespace, settings))
    return yaml.dump_all(objects, Dumper=_Plain, sort_keys=False)
