"""Every object the operator creates is watched, and its events reach its owner."""

from __future__ import annotations

from typing import Any

import pytest

from clipper.common import api
from clipper.operator.builders import (
    build_frontend_deployment,
    build_frontend_rbac,
    build_frontend_service,
    build_model_deployment,
    build_model_network_policy,
    build_model_service,
)
from clipper.operator.context import APPS, MODELS
from clipper.operator.handlers.registry import owner_key
from clipper.operator.settings import OperatorSettings
from clipper.operator.watched import WATCHED

SETTINGS = OperatorSettings()
MD = api.ModelDeployment.model_validate(
    {
        "metadata": {"name": "digits-logreg", "namespace": "ml", "uid": "uid-md"},
        "spec": {"version": "v1", "framework": "sklearn", "modelUri": "/m.joblib"},
    }
)
APP = api.ClipperApp.model_validate(
    {
        "metadata": {"name": "digits", "namespace": "ml", "uid": "uid-app"},
        "spec": {"models": ["digits-logreg"]},
    }
)


def model_children() -> list[dict[str, Any]]:
    return [
        build_model_deployment(MD, "v1", MD.spec.template(), 2, SETTINGS),
        build_model_service(MD, "v1"),
    ]


def app_children() -> list[dict[str, Any]]:
    policy = build_model_network_policy(APP, [MD], SETTINGS)
    assert policy is not None
    return [
        *build_frontend_rbac(APP),
        build_frontend_deployment(APP, SETTINGS),
        build_frontend_service(APP),
        policy,
    ]


def plural(obj: dict[str, Any]) -> str:
    kind = obj["kind"].lower()
    return f"{kind[:-1]}ies" if kind.endswith("y") else f"{kind}s"


@pytest.mark.parametrize(
    ("children", "owner"),
    [
        (model_children, (MODELS, "ml", "digits-logreg")),
        (app_children, (APPS, "ml", "digits")),
    ],
    ids=["model", "app"],
)
def test_every_child_is_watched_by_label_and_names_its_owner(
    children: Any, owner: tuple[str, str, str]
) -> None:
    watched = {w.plural for w in WATCHED}
    for child in children():
        labels = child["metadata"]["labels"]
        assert plural(child) in watched, child["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "clipper-operator", child["kind"]
        assert owner_key("ml", labels) == owner, child["kind"]


def test_an_object_without_an_owner_label_enqueues_nothing() -> None:
    assert owner_key("ml", {"app.kubernetes.io/managed-by": "clipper-operator"}) is None
