"""The per-app NetworkPolicy: its models' pods admit only its frontends (and the scraper)."""

from __future__ import annotations

from typing import Any

import pytest

from clipper.common import api
from clipper.operator.builders import build_model_network_policy
from clipper.operator.settings import OperatorSettings


def app(name: str = "digits") -> api.ClipperApp:
    return api.ClipperApp.model_validate(
        {
            "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}"},
            "spec": {"models": []},
        }
    )


def model(name: str) -> api.ModelDeployment:
    return api.ModelDeployment.model_validate(
        {
            "metadata": {"name": name, "namespace": "ml", "uid": name},
            "spec": {"version": "v1", "framework": "noop"},
        }
    )


def policy(
    owner: api.ClipperApp, names: list[str], settings: OperatorSettings | None = None
) -> dict[str, Any]:
    built = build_model_network_policy(
        owner, [model(n) for n in names], settings or OperatorSettings()
    )
    assert built is not None
    return built


def test_the_apps_models_admit_only_its_frontends_on_the_grpc_port() -> None:
    obj = policy(app(), ["b-model", "a-model"])
    assert (obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"]) == (
        "NetworkPolicy",
        "digits-models",
        "ml",
    )
    (owner,) = obj["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ClipperApp", "digits", True)
    spec = obj["spec"]
    assert spec["podSelector"] == {
        "matchExpressions": [
            {"key": "clipper.dev/model", "operator": "In", "values": ["a-model", "b-model"]}
        ]
    }
    assert spec["policyTypes"] == ["Ingress"]
    (grpc,) = spec["ingress"]  # no scraper configured: the metrics port admits no one
    frontends = {"clipper.dev/app": "digits", "app.kubernetes.io/component": "frontend"}
    assert grpc == {
        "from": [{"podSelector": {"matchLabels": frontends}}],
        "ports": [{"protocol": "TCP", "port": 8001}],
    }


def test_a_model_shared_by_two_apps_admits_each_apps_frontends() -> None:
    # Policies add up: the shared model is selected by both, each admitting its own app.
    first, second = policy(app("one"), ["shared"]), policy(app("two"), ["shared", "own"])
    admitted = set()
    for obj in (first, second):
        (selector,) = obj["spec"]["podSelector"]["matchExpressions"]
        if "shared" in selector["values"]:
            peer = obj["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
            admitted.add(peer["clipper.dev/app"])
    assert admitted == {"one", "two"}
    assert first["metadata"]["name"] != second["metadata"]["name"]


@pytest.mark.parametrize(
    ("settings", "peer"),
    [
        (
            OperatorSettings(
                metrics_scraper_namespace="monitoring",
                metrics_scraper_labels="app.kubernetes.io/name=prometheus",
            ),
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            },
        ),
        (
            OperatorSettings(metrics_scraper_namespace="monitoring"),
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {}},
            },
        ),
        (
            OperatorSettings(metrics_scraper_labels="app=prom,tier=ops"),
            {"podSelector": {"matchLabels": {"app": "prom", "tier": "ops"}}},
        ),
    ],
)
def test_the_configured_scraper_is_admitted_to_the_metrics_port_only(
    settings: OperatorSettings, peer: dict[str, Any]
) -> None:
    _, metrics = policy(app(), ["m"], settings)["spec"]["ingress"]
    assert metrics == {"from": [peer], "ports": [{"protocol": "TCP", "port": 8002}]}


def test_an_app_without_models_gets_no_policy() -> None:
    assert build_model_network_policy(app(), [], OperatorSettings()) is None


def test_scraper_labels_must_be_key_value_pairs() -> None:
    with pytest.raises(ValueError, match="key=value"):
        OperatorSettings(metrics_scraper_labels="prometheus")
