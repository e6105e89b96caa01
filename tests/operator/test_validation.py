"""Semantic checks: problems become a reason and a message, not an exception."""

from __future__ import annotations

from typing import Any

import pytest

from clipper.common import api
from clipper.operator.validation import Problem, Retry, app_problems, name_conflict, typed


def raw_model(name: str = "digits", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "clipper.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}", "generation": 2},
        "spec": {"version": "v1", "framework": "sklearn", "modelUri": "/m.joblib", **spec},
    }


def model(name: str, **spec: Any) -> api.ModelDeployment:
    obj, problem = typed(raw_model(name, **spec))
    assert problem is None
    assert isinstance(obj, api.ModelDeployment)
    return obj


def app(**spec: Any) -> api.ClipperApp:
    return api.ClipperApp.model_validate(
        {"metadata": {"name": "a", "namespace": "ml", "uid": "uid-a"}, "spec": spec}
    )


def test_a_valid_object_is_typed_with_defaults_and_its_status() -> None:
    raw = raw_model()
    raw["status"] = {"stableVersion": "v1", "traffic": [{"version": "v1", "weight": 100}]}
    raw["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply"}]
    obj, problem = typed(raw)
    assert problem is None
    assert isinstance(obj, api.ModelDeployment)
    assert obj.spec.rollout.drain_seconds == 10  # defaulted as the API server would
    assert obj.status.stable_version == "v1"
    assert obj.metadata.uid == "uid-digits"


def test_a_gpu_request_on_a_cpu_framework_is_an_invalid_spec_naming_the_field() -> None:
    obj, problem = typed(raw_model(resources={"limits": {"nvidia.com/gpu": 1}}))
    assert obj is None
    assert problem is not None
    assert problem.reason == "InvalidSpec"
    assert problem.message.startswith("spec.resources: ")
    assert "nvidia.com/gpu needs a framework that can use a GPU" in problem.message


def test_every_schema_problem_is_reported_at_once() -> None:
    _, problem = typed(raw_model(replicas=-1, threads=0))
    assert problem is not None
    assert "spec.replicas" in problem.message
    assert "spec.threads" in problem.message


def test_an_app_naming_a_missing_model_has_a_problem() -> None:
    problems = app_problems(app(models=["digits", "ghost", "gone"]), [model("digits")])
    assert problems == [Problem("ModelNotFound", "no ModelDeployment named ghost, gone")]


def test_two_models_of_an_app_claiming_one_name_clash() -> None:
    models = [model("a-sklearn", modelName="digits"), model("b-torch", modelName="digits")]
    problems = app_problems(app(models=["a-sklearn", "b-torch"]), models)
    assert [p.reason for p in problems] == ["ModelNameClash"]
    assert "a-sklearn and b-torch" in problems[0].message
    assert "'digits'" in problems[0].message


def test_models_outside_the_app_never_clash_with_it() -> None:
    models = [model("a", modelName="digits"), model("b", modelName="digits")]
    assert app_problems(app(models=["a"]), models) == []


def test_a_name_is_free_when_absent_or_already_ours() -> None:
    owner = model("digits")
    ours = {"kind": "Deployment", "metadata": {"name": "digits-v1", "ownerReferences": [
        {"kind": "ModelDeployment", "name": "digits", "uid": "uid-digits", "controller": True}
    ]}}  # fmt: skip
    assert name_conflict(None, owner) is None
    assert name_conflict(ours, owner) is None


def test_a_name_held_by_another_owner_is_a_conflict() -> None:
    owner = model("a", version="b-c")
    theirs = {"kind": "Deployment", "metadata": {"name": "a-b-c", "ownerReferences": [
        {"kind": "ModelDeployment", "name": "a-b", "uid": "uid-a-b", "controller": True}
    ]}}  # fmt: skip
    problem = name_conflict(theirs, owner)
    assert problem is not None
    assert problem.reason == "NameConflict"
    assert "ModelDeployment a-b" in problem.message
    unowned = {"kind": "Service", "metadata": {"name": "a-b-c"}}
    conflict = name_conflict(unowned, owner)
    assert conflict is not None
    assert "no controller" in conflict.message


def test_a_name_left_by_a_deleted_namesake_is_retried_not_a_conflict() -> None:
    owner = model("digits")
    stale = {"kind": "Deployment", "metadata": {"name": "digits-v1", "ownerReferences": [
        {"kind": "ModelDeployment", "name": "digits", "uid": "old-uid", "controller": True}
    ]}}  # fmt: skip
    with pytest.raises(Retry):
        name_conflict(stale, owner)
