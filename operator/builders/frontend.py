"""One ClipperApp as Kubernetes objects: its frontend, the Service clients call, RBAC.

The frontend runs ``clipper frontend`` with the Kubernetes discovery for its one
app: it watches the ClipperApp, the ModelDeployments' ``status.traffic`` and the
EndpointSlices of their versions, so it follows rollouts and replica changes live
without the operator in the request path. It therefore gets a ServiceAccount of
its own that may only *read* exactly those kinds in its namespace (and only its
own ClipperApp), and patch its own ClipperApp's status (the ``RoutingRejected``
condition, when it cannot apply the app's spec), nothing else.

``spec.frontend.podTemplate`` adds labels, annotations, affinity, a priority class
and image pull secrets to the frontend's pods, like a ModelDeployment's
``spec.podTemplate``, but no ServiceAccount: the frontend's own is what lets its
discovery read the API.
"""

from __future__ import annotations

from typing import Any

from clipper.common import api
from clipper.common.frontend_args import STATE_URL_ENV, frontend_flags
from clipper.operator import naming
from clipper.operator.builders import drain
from clipper.operator.builders.meta import (
    CONTAINER_SECURITY,
    POD_SECURITY,
    common_labels,
    object_meta,
    pod_metadata,
)
from clipper.operator.builders.resources import container_resources
from clipper.operator.settings import OperatorSettings

READ = ["get", "list", "watch"]


def selector_labels(app: api.ClipperApp) -> dict[str, str]:
    return {naming.LABEL_APP: app.metadata.name, naming.PART: "frontend"}


def frontend_labels(app: api.ClipperApp) -> dict[str, str]:
    labels = common_labels("clipper-frontend", app.metadata.name, "frontend")
    return {**labels, naming.LABEL_APP: app.metadata.name}


def frontend_args(app: api.ClipperApp) -> list[str]:
    """``clipper frontend`` serving ``app``, discovered from the Kubernetes API."""
    return [
        "frontend",
        "--kubernetes-app",
        app.metadata.name,
        "--kubernetes-namespace",
        app.metadata.namespace or "default",
        "--host",
        "0.0.0.0",
        "--http-port",
        str(naming.FRONTEND_HTTP_PORT),
        "--grpc-port",
        str(naming.FRONTEND_GRPC_PORT),
        *frontend_flags(app.spec.frontend, app.spec.state, app.metadata.namespace or "default"),
        "--grace-period-s",
        drain.number(drain.FRONTEND_GRACE_PERIOD_S),
    ]


def state_env(state: api.StateSpec) -> list[dict[str, Any]]:
    """The Redis URL as the frontend's environment: from the Secret key ``secretRef``
    names (``secretKeyRef``: Kubernetes reports a missing Secret or key on the pod,
    which then does not start), else the URL itself (one without a password: the
    CRD refuses ``@`` in ``url``)."""
    if not state.shared:
        return []
    if state.secret_ref is not None:
        ref = {"name": state.secret_ref.name, "key": state.secret_ref.key}
        return [{"name": STATE_URL_ENV, "valueFrom": {"secretKeyRef": ref}}]
    return [{"name": STATE_URL_ENV, "value": state.url}]


def _http_probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def per_workers(cpu: str, workers: int) -> str:
    """The CPU request ``cpu`` (a quantity: ``250m``, ``1``, ``0.5``) once per worker:
    each worker is a process that keeps a core busy under load."""
    if workers == 1:
        return cpu
    millis = float(cpu[:-1]) if cpu.endswith("m") else float(cpu) * 1000
    return f"{round(millis * workers)}m"


def _container(app: api.ClipperApp, settings: OperatorSettings) -> dict[str, Any]:
    spec = app.spec.frontend
    defaults = {
        "cpu": per_workers(settings.frontend_cpu_request, spec.workers),
        "memory": settings.frontend_memory_request,
    }
    return {
        "name": "frontend",
        "image": spec.image or settings.frontend_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["clipper"],
        "args": frontend_args(app),
        **({"env": env} if (env := state_env(app.spec.state)) else {}),
        "ports": [
            {"name": "http", "containerPort": naming.FRONTEND_HTTP_PORT},
            {"name": "grpc", "containerPort": naming.FRONTEND_GRPC_PORT},
        ],
        "resources": container_resources(spec.resources, defaults),
        "readinessProbe": _http_probe("/readyz", period=2, failures=2),
        "livenessProbe": _http_probe("/v2/health/live", period=10, failures=3),
        "lifecycle": drain.frontend_timings(app).lifecycle(),
        "securityContext": CONTAINER_SECURITY,
    }


def build_frontend_deployment(app: api.ClipperApp, settings: OperatorSettings) -> dict[str, Any]:
    """The Deployment ``<app>-frontend``."""
    name = naming.frontend_name(app.metadata.name)
    labels = frontend_labels(app)
    pod = app.spec.frontend.pod_template or api.FrontendPodTemplate()
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(naming.FRONTEND_HTTP_PORT),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(app, name, labels),
        "spec": {
            "replicas": app.spec.frontend.replicas,
            "selector": {"matchLabels": selector_labels(app)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": pod_metadata(app, pod.metadata, labels, annotations),
                "spec": {
                    **(pod.spec or api.PodSettings()).to_dict(),
                    "serviceAccountName": name,
                    "containers": [_container(app, settings)],
                    # preStop sleep + the app's drain delay + grace period (see drain.py)
                    "terminationGracePeriodSeconds": drain.frontend_timings(
                        app
                    ).termination_grace_s,
                    "securityContext": POD_SECURITY,
                    "enableServiceLinks": False,
                },
            },
        },
    }


def build_frontend_service(app: api.ClipperApp) -> dict[str, Any]:
    """The Service ``<app>`` in front of the frontend: HTTP and gRPC."""
    service = app.spec.frontend.service
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(
            app, naming.frontend_service_name(app.metadata.name), frontend_labels(app)
        ),
        "spec": {
            "type": service.type,
            "selector": selector_labels(app),
            "ports": [
                {
                    "name": "http",
                    "port": service.http_port,
                    "targetPort": "http",
                    "appProtocol": "http",
                },
                {
                    "name": "grpc",
                    "port": service.grpc_port,
                    "targetPort": "grpc",
                    "appProtocol": "grpc",
                },
            ],
        },
    }


def frontend_endpoint(app: api.ClipperApp) -> api.Endpoint:
    """Where clients in the cluster reach the app (the cluster domain is left out)."""
    host = f"{naming.frontend_service_name(app.metadata.name)}.{app.metadata.namespace}.svc"
    service = app.spec.frontend.service
    return api.Endpoint(
        http=f"http://{host}:{service.http_port}", grpc=f"{host}:{service.grpc_port}"
    )


def build_frontend_rbac(app: api.ClipperApp) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding ``<app>-frontend``: read what discovery watches,
    report on its app's status."""
    name = naming.frontend_name(app.metadata.name)
    labels = frontend_labels(app)
    rules = [
        {
            "apiGroups": [api.GROUP],
            "resources": ["clipperapps"],
            "resourceNames": [app.metadata.name],
            "verbs": READ,
        },
        {  # its RoutingRejected condition (server-side apply), on its own app only
            "apiGroups": [api.GROUP],
            "resources": ["clipperapps/status"],
            "resourceNames": [app.metadata.name],
            "verbs": ["patch"],
        },
        {"apiGroups": [api.GROUP], "resources": ["modeldeployments"], "verbs": READ},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
    ]
    account = {"apiVersion": "v1", "kind": "ServiceAccount"}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "rules": rules}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": app.metadata.namespace}],
    }
    return [{**obj, "metadata": object_meta(app, name, labels)} for obj in (account, role, binding)]
