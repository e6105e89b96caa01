"""No pod the operator creates is BestEffort: default requests, overridden by the CR."""

from __future__ import annotations

from typing import Any

import pytest

from clipper.common import api
from clipper.operator.builders import build_frontend_deployment, build_model_deployment
from clipper.operator.builders.resources import container_resources
from clipper.operator.settings import OperatorSettings

SETTINGS = OperatorSettings(
    model_cpu_request="1",
    model_memory_request="2Gi",
    frontend_cpu_request="300m",
    frontend_memory_request="128Mi",
)
DEFAULTS = {"cpu": "100m", "memory": "64Mi"}


def model_resources(resources: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"version": "v1", "framework": "pytorch", "modelUri": "/m.pt"}
    if resources is not None:
        spec["resources"] = resources
    md = api.ModelDeployment.model_validate(
        {"metadata": {"name": "m", "namespace": "ns", "uid": "u"}, "spec": spec}
    )
    obj = build_model_deployment(md, "v1", md.spec.template(), 1, SETTINGS)
    found: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]["resources"]
    return found


def frontend_resources(resources: dict[str, Any] | None = None, workers: int = 1) -> dict[str, Any]:
    frontend: dict[str, Any] = {"workers": workers}
    if resources is not None:
        frontend["resources"] = resources
    app = api.ClipperApp.model_validate(
        {
            "metadata": {"name": "a", "namespace": "ns", "uid": "u"},
            "spec": {"models": ["m"], "frontend": frontend},
        }
    )
    obj = build_frontend_deployment(app, SETTINGS)
    found: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]["resources"]
    return found


def test_pods_without_resources_get_the_default_requests_and_no_limits() -> None:
    assert model_resources() == {"requests": {"cpu": "1", "memory": "2Gi"}}
    assert frontend_resources() == {"requests": {"cpu": "300m", "memory": "128Mi"}}


def test_a_frontend_of_several_workers_requests_the_default_cpu_per_worker() -> None:
    assert frontend_resources(workers=3) == {"requests": {"cpu": "900m", "memory": "128Mi"}}
    assert frontend_resources({"requests": {"cpu": "2"}}, workers=4) == {
        "requests": {"cpu": "2", "memory": "128Mi"}
    }


def test_the_crs_requests_win() -> None:
    wanted = {"requests": {"cpu": "4", "memory": "8Gi"}}
    assert model_resources(wanted) == wanted
    assert frontend_resources({"requests": {"cpu": "2"}}) == {
        "requests": {"cpu": "2", "memory": "128Mi"}
    }


def test_a_gpu_model_keeps_equal_gpu_requests_and_limits_and_gets_cpu_and_memory() -> None:
    assert model_resources({"limits": {"nvidia.com/gpu": 1}}) == {
        "limits": {"nvidia.com/gpu": "1"},
        "requests": {"nvidia.com/gpu": "1", "cpu": "1", "memory": "2Gi"},
    }


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        # A limit alone: Kubernetes requests the limit; a default could exceed it.
        (
            {"limits": {"memory": "32Mi"}},
            {"limits": {"memory": "32Mi"}, "requests": {"cpu": "100m"}},
        ),
        ({"limits": {"cpu": 1, "memory": "1Gi"}}, {"limits": {"cpu": "1", "memory": "1Gi"}}),
        (None, {"requests": DEFAULTS}),
    ],
)
def test_a_limit_without_a_request_gets_no_default_request(
    wanted: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    given = None if wanted is None else api.ResourceRequirements.model_validate(wanted)
    assert container_resources(given, DEFAULTS) == expected
