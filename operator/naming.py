"""Names, labels and ports of everything the operator creates, in one place.

Builders, the observer and the handlers' watch filters must agree on these, and
so must the frontend's Kubernetes discovery (which finds a version's replicas by
the labels its Service copies onto its EndpointSlices) -- it cannot import this
module (components are independent), so the label keys are documented in
docs/architecture.md and checked there by an integration test.

Every object is namespaced and owned by the ClipperApp or ModelDeployment it
serves, so deleting that object garbage-collects them all: no finalizers.
"""

from __future__ import annotations

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

LABEL_MODEL = "clipper.dev/model"
"""On a version's Deployment, pods, Service (and so its EndpointSlices): the
ModelDeployment's name."""
LABEL_VERSION = "clipper.dev/version"
"""Next to ``LABEL_MODEL``: the version."""
LABEL_APP = "clipper.dev/app"
"""On a frontend's Deployment, pods and Service: the ClipperApp's name."""
LABEL_TEMPLATE_HASH = "clipper.dev/template-hash"
"""On a version's pods: a hash of the version's template, so the observer counts
only replicas that run the version's current template."""

MANAGED_SELECTOR = f"{MANAGED_BY}={COMPONENT}"
"""Label selector of everything the operator creates (its watches filter on it
server-side, so it never watches unrelated Deployments or pods)."""

GRPC_PORT = 8001
"""The model server's Open Inference Protocol gRPC port (also its health port)."""
METRICS_PORT = 8002
"""The model server's Prometheus port."""
GRPC_PORT_NAME = "grpc"
"""The name of the gRPC port on a version's Service and so in its EndpointSlices."""
FRONTEND_HTTP_PORT = 8080
FRONTEND_GRPC_PORT = 8081


def version_name(model: str, version: str) -> str:
    """The Deployment and headless Service of one version (the CRD keeps it <= 63)."""
    return f"{model}-{version}"


def frontend_name(app: str) -> str:
    """The frontend's Deployment, ServiceAccount, Role and RoleBinding."""
    return f"{app}-frontend"


def frontend_service_name(app: str) -> str:
    """The Service clients call: ``<app>.<namespace>.svc``."""
    return app
