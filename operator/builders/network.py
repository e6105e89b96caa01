"""Per app, a NetworkPolicy: its models' pods accept traffic only from its frontends.

Model servers have no authentication of their own; without a policy any pod in
the cluster could call them directly, skipping the frontend's admission control,
cache and selection. The policy ``<app>-models`` selects the pods of the app's
models and admits, on the gRPC port, the pods of the app's frontend (same
namespace: an app names models of its own namespace), and on the metrics port
the scraper that the operator is told of (``--metrics-scraper-namespace``,
``--metrics-scraper-labels``), if any.

NetworkPolicies add up: a pod selected by several policies accepts what any of
them admits. So a model that several apps serve is selected by each app's policy
and admits each app's frontends, and nothing has to know about the other apps.
The policy is owned by the app and garbage-collected with it. A model in no app
is selected by no policy and stays open, as Kubernetes leaves every pod by
default. Enforcement is the CNI plugin's (Calico, Cilium...): on a cluster
without one the policy is stored but has no effect.
"""

from __future__ import annotations

from typing import Any

from clipper.common import api
from clipper.operator import naming
from clipper.operator.builders.frontend import selector_labels
from clipper.operator.builders.meta import common_labels, object_meta
from clipper.operator.settings import OperatorSettings

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace: selects a namespace by its name."""


def _frontends(app: api.ClipperApp) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": selector_labels(app)}}


def _scraper(settings: OperatorSettings) -> dict[str, Any] | None:
    if settings.metrics_scraper_namespace is None and not settings.metrics_scraper_labels:
        return None
    peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(settings.metrics_scraper_labels)}}
    if settings.metrics_scraper_namespace is not None:
        name = {NAMESPACE_NAME_LABEL: settings.metrics_scraper_namespace}
        peer["namespaceSelector"] = {"matchLabels": name}
    return peer


def build_model_network_policy(
    app: api.ClipperApp, models: list[api.ModelDeployment], settings: OperatorSettings
) -> dict[str, Any] | None:
    """The NetworkPolicy ``<app>-models``; None when the app has no models to guard."""
    names = sorted({md.metadata.name for md in models})
    if not names:
        return None
    ingress: list[dict[str, Any]] = [
        {"from": [_frontends(app)], "ports": [{"protocol": "TCP", "port": naming.GRPC_PORT}]}
    ]
    scraper = _scraper(settings)
    if scraper is not None:
        ingress.append(
            {"from": [scraper], "ports": [{"protocol": "TCP", "port": naming.METRICS_PORT}]}
        )
    labels = {
        **common_labels("clipper-model-access", app.metadata.name, "network-policy"),
        naming.LABEL_APP: app.metadata.name,
    }
    selector = {"key": naming.LABEL_MODEL, "operator": "In", "values": names}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(app, naming.model_policy_name(app.metadata.name), labels),
        "spec": {
            "podSelector": {"matchExpressions": [selector]},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }
