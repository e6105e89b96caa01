"""Invalid specs: the API server rejects what the schema can; the operator turns the
rest into conditions and Events, one object at a time, and keeps going."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    APPS,
    MODELS,
    clipper_app,
    condition,
    create,
    model_deployment,
    operator,
    patch_spec,
    read,
    reasons,
    wait_for_events,
    wait_for_object,
    wait_ready,
)


def degraded(reason: str) -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        found = condition(obj, "Degraded")
        return found.get("status") == "True" and found.get("reason") == reason

    return check


def test_the_api_server_rejects_a_gpu_request_on_a_cpu_framework(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path
) -> None:
    bad = model_deployment("digits", resources={"limits": {"nvidia.com/gpu": 1}})
    result = k8s.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(bad),
                         check=False)  # fmt: skip
    assert result.returncode != 0
    assert "nvidia.com/gpu needs a framework that can use a GPU" in result.stderr
    assert "spec.resources" in result.stderr


def test_the_api_server_lets_python_models_ask_for_a_gpu_with_a_cpu_fallback(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path
) -> None:
    gpu = {"limits": {"nvidia.com/gpu": 1}}
    python = model_deployment(
        "fn", framework="python", modelUri="pkg.mod:fn", device="cuda", cpuFallback=True,
        resources=gpu,
    )  # fmt: skip
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(python))
    stored = read(k8s, namespace, MODELS, "fn")["spec"]
    assert (stored["device"], stored["cpuFallback"]) == ("cuda", True)
    defaulted = model_deployment("torch", framework="pytorch", modelUri="/m.pt", device="cuda")
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(defaulted))
    assert read(k8s, namespace, MODELS, "torch")["spec"]["cpuFallback"] is False
    bad = model_deployment("bad", cpuFallback="sometimes")
    result = k8s.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(bad),
                         check=False)  # fmt: skip
    assert result.returncode != 0
    assert "spec.cpuFallback" in result.stderr


def test_semantic_errors_become_conditions_and_events_and_the_rest_is_reconciled(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        # Two models of one app that claim the same model name.
        create(k8s, namespace, model_deployment("x-sklearn", modelName="digits"))
        create(k8s, namespace, model_deployment("y-sklearn", modelName="digits"))
        create(k8s, namespace, clipper_app("clash", ["x-sklearn", "y-sklearn"]))
        # An app that names a model that does not exist.
        create(k8s, namespace, clipper_app("ghost", ["nowhere"]))
        # Two models whose versions would need one name: a + b-c and a-b + c.
        create(k8s, namespace, model_deployment("a", version="b-c"))
        wait_for_object(k8s, namespace, MODELS, "a", lambda o: condition(o, "Ready").get(
            "status") == "True", "a Ready", operator=proc)  # fmt: skip
        create(k8s, namespace, model_deployment("a-b", version="c"))

        clash = wait_for_object(k8s, namespace, APPS, "clash", degraded("ModelNameClash"),
                                "clash Degraded", operator=proc)  # fmt: skip
        assert "x-sklearn and y-sklearn both serve the model name 'digits'" in condition(
            clash, "Degraded")["message"]  # fmt: skip
        assert condition(clash, "Ready")["status"] == "False"
        ghost = wait_for_object(k8s, namespace, APPS, "ghost", degraded("ModelNotFound"),
                                "ghost Degraded", operator=proc)  # fmt: skip
        assert "no ModelDeployment named nowhere" in condition(ghost, "Degraded")["message"]
        taken = wait_for_object(k8s, namespace, MODELS, "a-b", degraded("NameConflict"),
                                "a-b Degraded", operator=proc)  # fmt: skip
        message = condition(taken, "Degraded")["message"]
        assert "Deployment a-b-c already exists and belongs to ModelDeployment a" in message
        assert read(k8s, namespace, MODELS, "a")["status"]["trafficSummary"] == "b-c=100"
        # Everything else is reconciled as usual.
        for name in ("x-sklearn", "y-sklearn", "a"):
            wait_ready(k8s, namespace, MODELS, name, proc)
        for name, reason in (("clash", "ModelNameClash"), ("ghost", "ModelNotFound"),
                             ("a-b", "NameConflict")):  # fmt: skip
            wait_for_events(
                k8s, namespace, name, lambda found, r=reason: reasons(found, "Warning") == [r],
                f"one {reason} Warning on {name}",
            )  # fmt: skip

        # Fixing the spec is enough: no restart, no retry loop to wait for.
        patch_spec(k8s, namespace, MODELS, "y-sklearn", {"modelName": "digits-too"})
        wait_ready(k8s, namespace, APPS, "clash", proc)
        wait_for_events(
            k8s, namespace, "clash",
            lambda found: [(t, r) for t, r, _ in found][-2:]
            == [("Warning", "ModelNameClash"), ("Normal", "Ready")],
            "one Ready Event after the clash",
        )  # fmt: skip
