"""The Kubernetes discovery's view: objects in, routing table out (no cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from clipper.common.cluster import LABEL_MODEL, LABEL_VERSION
from clipper.common.errors import ConfigError
from clipper.frontend.routing.discovery.cluster_view import (
    APP,
    MODELS,
    SLICES,
    ClusterView,
    slice_endpoints,
)
from clipper.frontend.routing.discovery.factory import make_discovery
from clipper.frontend.routing.discovery.kubernetes import KubernetesDiscovery
from clipper.frontend.settings import FrontendSettings


def endpoint(address: str, ready: bool | None = True, terminating: bool = False) -> dict[str, Any]:
    conditions: dict[str, Any] = {"terminating": terminating}
    if ready is not None:
        conditions["ready"] = ready
    return {"addresses": [address], "conditions": conditions}


def endpoint_slice(name: str, version: str, *endpoints: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {LABEL_MODEL: "digits", LABEL_VERSION: version}},
        "ports": [{"name": "metrics", "port": 8002}, {"name": "grpc", "port": 8001}],
        "endpoints": list(endpoints),
    }


def model(name: str, traffic: dict[str, int], model_name: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"version": "v1", "framework": "noop"}
    if model_name:
        spec["modelName"] = model_name
    return {
        "apiVersion": "clipper.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": spec,
        "status": {"traffic": [{"version": v, "weight": w} for v, w in traffic.items()]},
    }


def app(models: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "clipper.dev/v1alpha1",
        "kind": "ClipperApp",
        "metadata": {"name": "digits", "namespace": "ml"},
        "spec": {"models": models, "latencySLOMillis": 20},
    }


def test_ready_endpoints_at_the_grpc_port_and_nothing_draining() -> None:
    parsed = slice_endpoints(
        endpoint_slice(
            "s", "v2",
            endpoint("10.0.0.1"),
            endpoint("10.0.0.2", ready=None),  # unset means ready
            endpoint("10.0.0.3", ready=False),
            endpoint("10.0.0.4", terminating=True),
            endpoint("fd00::5"),
        )
    )  # fmt: skip
    assert parsed == (("digits", "v2"), ["10.0.0.1:8001", "10.0.0.2:8001", "[fd00::5]:8001"])


def test_slices_without_our_labels_or_port_are_not_ours() -> None:
    unlabelled = endpoint_slice("s", "v1", endpoint("10.0.0.1"))
    del unlabelled["metadata"]["labels"][LABEL_VERSION]
    no_port = endpoint_slice("s", "v1", endpoint("10.0.0.1"))
    no_port["ports"] = [{"name": "metrics", "port": 8002}]
    assert slice_endpoints(unlabelled) is None
    assert slice_endpoints(no_port) is None


def test_the_table_joins_traffic_and_endpoints_of_every_slice() -> None:
    view = ClusterView("digits")
    view.replace(APP, [app(["digits"])])
    view.replace(MODELS, [model("digits", {"v1": 90, "v2": 10})])
    view.replace(
        SLICES,
        [
            endpoint_slice("a", "v1", endpoint("10.0.0.2")),
            endpoint_slice("b", "v1", endpoint("10.0.0.1")),
            endpoint_slice("c", "v2", endpoint("10.0.0.3")),
        ],
    )
    config = view.table().apps["digits"]
    assert config.latency_slo_ms == 20
    (route,) = config.models
    assert [(v.version, v.weight, v.replicas) for v in route.versions] == [
        ("v1", 90.0, ("10.0.0.1:8001", "10.0.0.2:8001")),
        ("v2", 10.0, ("10.0.0.3:8001",)),
    ]
    view.apply(SLICES, "DELETED", endpoint_slice("c", "v2"))
    (route,) = view.table().apps["digits"].models
    assert [v.version for v in route.versions] == ["v1"]


def test_no_app_no_table_and_a_clash_is_an_error() -> None:
    view = ClusterView("digits")
    view.replace(MODELS, [model("a", {"v1": 100}, "same"), model("b", {"v1": 100}, "same")])
    assert view.table().apps == {}
    view.apply(APP, "ADDED", app(["a", "b"]))
    with pytest.raises(ConfigError, match="both serve the model name 'same'"):
        view.table()


def test_the_frontend_picks_the_kubernetes_discovery_by_setting() -> None:
    settings = FrontendSettings(kubernetes_app="digits", kubernetes_namespace="ml")
    discovery = make_discovery(settings)
    assert isinstance(discovery, KubernetesDiscovery)
    assert (discovery.app, discovery.namespace) == ("digits", "ml")
    with pytest.raises(ValueError, match="not both"):
        FrontendSettings(kubernetes_app="digits", routes="routes.yaml")  # type: ignore[arg-type]
