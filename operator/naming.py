"""Names, labels and ports of everything the operator creates, in one place.

Builders, the observer and the handlers' watch filters must agree on these. The
labels and port the frontend's Kubernetes discovery relies on (it finds a
version's replicas by the labels its Service copies onto its EndpointSlices) live
in ``clipper.common.cluster``, which both components import.

Every object is namespaced and owned by the ClipperApp or ModelDeployment it
serves, so deleting that object garbage-collects them all: no finalizers.
"""

from __future__ import annotations

from clipper.common.cluster import (
    GRPC_PORT,
    GRPC_PORT_NAME,
    LABEL_APP,
    LABEL_MODEL,
    LABEL_VERSION,
    version_name,
)

__all__ = [
    "GRPC_PORT",
    "GRPC_PORT_NAME",
    "LABEL_APP",
    "LABEL_MODEL",
    "LABEL_VERSION",
    "version_name",
]

FIELD_MANAGER = "clipper-operator"
"""The server-side apply field manager of every object the operator writes."""

COMPONENT = "clipper-operator"
"""``source.component`` of the operator's Events."""

MANAGED_BY = "app.kubernetes.io/managed-by"
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
VERSION = "app.kubernetes.io/version"
PART = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"

LABEL_TEMPLATE_HASH = "clipper.dev/template-hash"
"""On a version's pods: a hash of the version's template, so the observer counts
only replicas that run the version's current template."""

MANAGED_SELECTOR = f"{MANAGED_BY}={COMPONENT}"
"""Label selector of everything the operator creates (its watches filter on it
server-side, so it never watches unrelated Deployments or pods)."""

METRICS_PORT = 8002
"""The model server's Prometheus port."""
FRONTEND_HTTP_PORT = 8080
FRONTEND_GRPC_PORT = 8081


def frontend_name(app: str) -> str:
    """The frontend's Deployment, ServiceAccount, Role and RoleBinding."""
    return f"{app}-frontend"


def frontend_service_name(app: str) -> str:
    """The Service clients call: ``<app>.<namespace>.svc``."""
    return app


def model_policy_name(app: str) -> str:
    """The NetworkPolicy that admits the app's frontends to its models' pods."""
    return f"{app}-models"
