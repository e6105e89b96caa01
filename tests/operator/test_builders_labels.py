"""The owner's labels reach everything built for it, never a selector, and lose clashes."""

from __future__ import annotations

from typing import Any

from clipper.common import api
from clipper.operator import naming
from clipper.operator.builders import (
    build_frontend_deployment,
    build_frontend_rbac,
    build_frontend_service,
    build_model_deployment,
    build_model_disruption_budget,
    build_model_network_policy,
    build_model_service,
)
from clipper.operator.settings import OperatorSettings

SETTINGS = OperatorSettings(model_image="model:cpu", frontend_image="clipper:test")
LABELS = {
    "team": "search",
    "example.com/cost-centre": "42",
    naming.MANAGED_BY: "Helm",  # the operator's own label: its value wins
    "clipper.dev/model": "someone-else",  # reserved: never copied
    "clipper.dev/anything": "x",  # reserved: never copied
}


def model(labels: dict[str, str] | None = LABELS) -> api.ModelDeployment:
    return api.ModelDeployment.model_validate(
        {
            "metadata": {"name": "digits", "namespace": "ml", "uid": "u1", "labels": labels},
            "spec": {"version": "v1", "framework": "noop"},
        }
    )


def app() -> api.ClipperApp:
    return api.ClipperApp.model_validate(
        {
            "metadata": {"name": "shop", "namespace": "ml", "uid": "u2", "labels": LABELS},
            "spec": {"models": ["digits"]},
        }
    )


def model_objects(md: api.ModelDeployment) -> list[dict[str, Any]]:
    return [
        build_model_deployment(md, "v1", md.spec.template(), 2, SETTINGS),
        build_model_service(md, "v1"),
        build_model_disruption_budget(md, "v1"),
    ]


def app_objects() -> list[dict[str, Any]]:
    a = app()
    policy = build_model_network_policy(a, [model()], SETTINGS)
    assert policy is not None
    return [
        build_frontend_deployment(a, SETTINGS),
        build_frontend_service(a),
        policy,
        *build_frontend_rbac(a),
    ]


def all_labels(obj: dict[str, Any]) -> list[dict[str, str]]:
    """The object's labels, and its pods' when it has a pod template."""
    found = [obj["metadata"]["labels"]]
    if "template" in obj.get("spec", {}):
        found.append(obj["spec"]["template"]["metadata"]["labels"])
    return found


def selectors(obj: dict[str, Any]) -> list[dict[str, str]]:
    spec = obj.get("spec", {})
    found = [spec["selector"]] if isinstance(spec.get("selector"), dict) else []
    found += [spec["podSelector"]] if "podSelector" in spec else []
    return [s.get("matchLabels", s) for s in found]


def test_the_owners_labels_reach_every_child_and_its_pods_minus_reserved_keys() -> None:
    for obj in [*model_objects(model()), *app_objects()]:
        for labels in all_labels(obj):
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            assert labels["team"] == "search", where
            assert labels["example.com/cost-centre"] == "42", where
            assert labels[naming.MANAGED_BY] == naming.COMPONENT, where
            assert "clipper.dev/anything" not in labels, where
            assert labels.get("clipper.dev/model") in (None, "digits"), where


def test_user_labels_never_enter_a_selector() -> None:
    plain = {
        (o["kind"], o["metadata"]["name"]): selectors(o) for o in model_objects(model(labels=None))
    }
    labelled = {(o["kind"], o["metadata"]["name"]): selectors(o) for o in model_objects(model())}
    assert labelled == plain
    for obj in app_objects():
        for selector in selectors(obj):
            assert "team" not in selector
