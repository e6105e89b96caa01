"""One model version as Kubernetes objects: a Deployment and a headless Service.

The Service is headless (``clusterIP: None``) because the frontend does not want
a virtual IP that spreads requests: it batches *per replica*, so it needs every
ready replica's address, which the EndpointSlice controller publishes for it. The
gRPC port is named ``grpc``, which is how the frontend finds it in a slice.

Readiness is the model server's own ``grpc.health.v1`` status (NOT_SERVING while
the model loads and while it drains), through Kubernetes' native gRPC probes. A
startup probe gives loading its own, longer budget, so a slow model is not killed
by the liveness probe before it has loaded.

``spec.podTemplate`` (labels, annotations, affinity, priority class, image pull
secrets, ServiceAccount) is not part of a version: it is read from the spec for
every version's Deployment, so a change rolls through the running pods by the
Deployment's own rolling update. The operator's labels and annotations win over
the user's, and never the user's go into a selector.

The model reaches the pod by its URI's scheme (an init container that fetches
http(s) and s3 into an emptyDir, a read-only PVC mount, or a path in the image):
see ``storage.py``.

A request for ``nvidia.com/gpu`` gets the CUDA image by default, equal requests
and limits (Kubernetes requires it of extended resources) and a toleration of the
``nvidia.com/gpu`` taint that GPU node pools carry.
"""

from __future__ import annotations

import math
from typing import Any

from clipper.common import api
from clipper.common.model_args import serve_args, serve_env
from clipper.operator import naming
from clipper.operator.builders import drain
from clipper.operator.builders.meta import (
    CONTAINER_SECURITY,
    POD_SECURITY,
    common_labels,
    object_meta,
    pod_metadata,
    stable_hash,
)
from clipper.operator.builders.resources import container_resources
from clipper.operator.builders.storage import ModelSource, model_source
from clipper.operator.settings import OperatorSettings

GPU_TOLERATION = {"key": api.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


def template_hash(template: api.VersionTemplate) -> str:
    """Identifies what a version runs; pods carry it as ``clipper.dev/template-hash``."""
    return stable_hash(template.to_dict())


def selector_labels(md: api.ModelDeployment, version: str) -> dict[str, str]:
    """What a version's Deployment selects and its Service routes to (immutable)."""
    return {naming.LABEL_MODEL: md.metadata.name, naming.LABEL_VERSION: version}


def version_labels(md: api.ModelDeployment, version: str) -> dict[str, str]:
    labels = common_labels("clipper-model", md.metadata.name, "model-server")
    return {**labels, naming.VERSION: version, **selector_labels(md, version)}


def _resources(template: api.VersionTemplate, settings: OperatorSettings) -> dict[str, Any]:
    defaults = {"cpu": settings.model_cpu_request, "memory": settings.model_memory_request}
    resources = container_resources(template.resources, defaults)
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    gpus = limits.get(api.GPU_RESOURCE) or requests.get(api.GPU_RESOURCE)
    if gpus is not None:  # extended resources: requests must equal limits
        limits[api.GPU_RESOURCE] = requests[api.GPU_RESOURCE] = gpus
        resources.update(limits=limits, requests=requests)
    return resources


def _tolerations(template: api.VersionTemplate) -> list[dict[str, Any]]:
    tolerations = [t.to_dict() for t in template.tolerations or []]
    covered = any(
        t.get("key") in (None, api.GPU_RESOURCE)
        and t.get("operator") == "Exists"
        and t.get("effect") in (None, "NoSchedule")
        for t in tolerations
    )
    if template.gpus() and not covered:
        tolerations.append(dict(GPU_TOLERATION))
    return tolerations


def _grpc_probe(period: int, failures: int) -> dict[str, Any]:
    return {
        "grpc": {"port": naming.GRPC_PORT},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _image(template: api.VersionTemplate, settings: OperatorSettings) -> str:
    default = settings.model_image_cuda if template.gpus() else settings.model_image
    return template.image or default


def _container(
    md: api.ModelDeployment,
    version: str,
    template: api.VersionTemplate,
    settings: OperatorSettings,
    source: ModelSource,
) -> dict[str, Any]:
    args = serve_args(
        template,
        name=md.model_name,
        version=version,
        port=naming.GRPC_PORT,
        host="0.0.0.0",
        metrics_port=naming.METRICS_PORT,
        model_uri=source.uri,
        extra=drain.model_server_flags(drain.MODEL),
    )
    startup_period = 5
    container: dict[str, Any] = {
        "name": "model",
        "image": _image(template, settings),
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["clipper", "model", "serve"],
        "args": args,
        "ports": [
            {"name": naming.GRPC_PORT_NAME, "containerPort": naming.GRPC_PORT},
            {"name": "metrics", "containerPort": naming.METRICS_PORT},
        ],
        "env": [{"name": k, "value": v} for k, v in serve_env(template).items()],
        "resources": _resources(template, settings),
        "startupProbe": _grpc_probe(
            startup_period, math.ceil(settings.model_startup_seconds / startup_period)
        ),
        "readinessProbe": _grpc_probe(period=2, failures=2),
        "livenessProbe": _grpc_probe(period=10, failures=3),
        "lifecycle": drain.MODEL.lifecycle(),
        # A server that cannot load (say, device cuda without a GPU) exits 1 with one
        # ERROR line: that line becomes the pod's termination message.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": CONTAINER_SECURITY,
    }
    if source.mounts:
        container["volumeMounts"] = source.mounts
    return container


POD_ANNOTATIONS = {
    "kubectl.kubernetes.io/default-container": "model",
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(naming.METRICS_PORT),
}


def _pod_settings(md: api.ModelDeployment) -> dict[str, Any]:
    """The pod spec fields that ``spec.podTemplate.spec`` sets, as a Pod spells them."""
    given = (md.spec.pod_template or api.PodTemplate()).spec or api.ModelPodSettings()
    return given.to_dict()


def build_model_deployment(
    md: api.ModelDeployment,
    version: str,
    template: api.VersionTemplate,
    replicas: int,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """The Deployment ``<name>-<version>`` running ``replicas`` model servers of ``template``."""
    labels = version_labels(md, version)
    pod_labels = {**labels, naming.LABEL_TEMPLATE_HASH: template_hash(template)}
    pod_template = md.spec.pod_template or api.PodTemplate()
    source = model_source(template, _image(template, settings), settings.image_pull_policy)
    pod_spec: dict[str, Any] = {
        "containers": [_container(md, version, template, settings, source)],
        # preStop sleep + drain delay + grace period (see drain.py)
        "terminationGracePeriodSeconds": drain.MODEL.termination_grace_s,
        "securityContext": POD_SECURITY,
        "automountServiceAccountToken": False,  # model servers never call the API
        "enableServiceLinks": False,
        "tolerations": _tolerations(template),
        "nodeSelector": dict(template.node_selector or {}),
        **_pod_settings(md),
    }
    if source.init_containers:
        pod_spec["initContainers"] = source.init_containers
    if source.volumes:
        pod_spec["volumes"] = source.volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(md, naming.version_name(md.metadata.name, version), labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(md, version)},
            "progressDeadlineSeconds": md.spec.rollout.progress_deadline_seconds,
            "revisionHistoryLimit": 2,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "template": {
                "metadata": pod_metadata(md, pod_template.metadata, pod_labels, POD_ANNOTATIONS),
                "spec": pod_spec,
            },
        },
    }


def build_model_service(md: api.ModelDeployment, version: str) -> dict[str, Any]:
    """The headless Service ``<name>-<version>``: one address per ready replica."""
    labels = version_labels(md, version)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(md, naming.version_name(md.metadata.name, version), labels),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(md, version),
            "publishNotReadyAddresses": False,
            "ports": [
                {
                    "name": naming.GRPC_PORT_NAME,
                    "port": naming.GRPC_PORT,
                    "targetPort": naming.GRPC_PORT_NAME,
                    "appProtocol": "grpc",
                },
                {"name": "metrics", "port": naming.METRICS_PORT, "targetPort": "metrics"},
            ],
        },
    }
