"""What installs the operator in a cluster: CRDs, its RBAC and its Deployment.

``clipper operator manifests | kubectl apply -f -`` prints these. The ClusterRole
is the operator's whole footprint, rule by rule:

- read ClipperApps and ModelDeployments, write their status (and their
  ``finalizers`` subresource, which clusters with OwnerReferencesPermissionEnforcement
  require before an owner reference may block its owner's deletion);
- manage the Deployments, Services, ServiceAccounts, Roles and RoleBindings it
  creates; read pods (readiness, crash loops); post Events;
- read EndpointSlices: the frontends' Roles grant that, and Kubernetes lets one
  grant only what one holds;
- read CRDs and namespaces (kopf discovers resources and namespace globs), and
  kopf's peering objects (only used with ``--peering``).

The Deployment runs one replica with the ``Recreate`` strategy (standalone, see
``kopf_settings``), as a non-root user, with kopf's liveness endpoint as probe.
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
ALL = ["get", "list", "watch", "create", "update", "patch", "delete"]
READ = ["get", "list", "watch"]
LIVENESS_PORT = 8080


def operator_rules() -> list[dict[str, Any]]:
    """The operator's ClusterRole rules."""
    kinds = ["clipperapps", "modeldeployments"]
    return [
        {"apiGroups": [api.GROUP], "resources": kinds, "verbs": READ},
        {
            "apiGroups": [api.GROUP],
            "resources": [f"{k}/status" for k in kinds],
            "verbs": ["get", "update", "patch"],
        },
        {
            "apiGroups": [api.GROUP],
            "resources": [f"{k}/finalizers" for k in kinds],
            "verbs": ["update"],
        },
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ALL},
        {"apiGroups": [""], "resources": ["services", "serviceaccounts"], "verbs": ALL},
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["roles", "rolebindings"],
            "verbs": ALL,
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": READ},
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": READ,
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": READ},
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["clusterkopfpeerings", "kopfpeerings"],
            "verbs": ["get", "list", "watch", "patch"],
        },
    ]


def build_operator_rbac(namespace: str) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole and ClusterRoleBinding ``clipper-operator``."""
    labels = {naming.NAME: NAME, naming.PART_OF: "clipper"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": NAME, "labels": labels},
            "rules": operator_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": NAME, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": NAME,
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
        },
    ]


def _env(settings: OperatorSettings) -> list[dict[str, Any]]:
    env = [
        {"name": "CLIPPER_OPERATOR_MODEL_IMAGE", "value": settings.model_image},
        {"name": "CLIPPER_OPERATOR_MODEL_IMAGE_CUDA", "value": settings.model_image_cuda},
        {"name": "CLIPPER_OPERATOR_FRONTEND_IMAGE", "value": settings.frontend_image},
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
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": CONTAINER_SECURITY,
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
    objects += build_operator_rbac(namespace)
    objects.append(build_operator_deployment(namespace, settings))
    return yaml.dump_all(objects, Dumper=_Plain, sort_keys=False)
