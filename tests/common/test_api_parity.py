"""The pydantic models and the CRDs describe the same API: fields, enums, defaults.

The CRD YAML is the source; these tests walk it beside the models so that a field
added, renamed, re-defaulted or given a new enum value in one place and not the
other fails here instead of drifting.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from clipper.common import api
from clipper.common.api import crds
from clipper.common.manifests import schema


def _args(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, dict):
        return [a for arg in typing.get_args(annotation) for a in [arg, *_args(arg)]]
    return []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for candidate in [annotation, *_args(annotation)]:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _enum_of(annotation: Any) -> list[Any] | None:
    for candidate in [annotation, *_args(annotation)]:
        if typing.get_origin(candidate) is Literal:
            return list(typing.get_args(candidate))
    return None


def _default(info: FieldInfo) -> Any:
    value = info.get_default(call_default_factory=True)
    return value.to_dict() if isinstance(value, api.ApiModel) else value


def compare(model: type[BaseModel], node: dict[str, Any], path: str, spec: bool) -> list[str]:
    problems = []
    by_alias = {info.alias or name: info for name, info in model.model_fields.items()}
    props = node.get("properties", {})
    if set(by_alias) != set(props):
        return [f"{path}: model {sorted(by_alias)} != CRD {sorted(props)}"]
    required = set(node.get("required", []))
    for key, sub in props.items():
        info, where = by_alias[key], f"{path}.{key}"
        if info.is_required() != (key in required):
            problems.append(f"{where}: required in one place only")
        enum = _enum_of(info.annotation)
        if enum != sub.get("enum") and not (enum and sub.get("enum") is None and key == "kind"):
            problems.append(f"{where}: enum {enum} != {sub.get('enum')}")
        if spec and not info.is_required():
            crd_default = schema.apply_defaults(sub["default"], sub) if "default" in sub else None
            if _default(info) != crd_default:
                problems.append(f"{where}: default {_default(info)!r} != {crd_default!r}")
        nested = _model_of(info.annotation)
        child = sub.get("items", sub) if sub.get("type") == "array" else sub
        if nested is not None and "properties" in child:
            problems.extend(compare(nested, child, where, spec))
    return problems


CASES = [
    (api.ClipperAppSpec, "ClipperApp", "spec", True),
    (api.ClipperAppStatus, "ClipperApp", "status", False),
    (api.ModelDeploymentSpec, "ModelDeployment", "spec", True),
    (api.ModelDeploymentStatus, "ModelDeployment", "status", False),
]


@pytest.mark.parametrize(("model", "kind", "part", "spec"), CASES)
def test_models_mirror_the_crd(model: type[BaseModel], kind: str, part: str, spec: bool) -> None:
    assert compare(model, crds.schema(kind)["properties"][part], part, spec) == []


def test_version_template_is_the_spec_minus_rollout_fields() -> None:
    schema_ = crds.schema("ModelDeployment")
    template = schema_["properties"]["status"]["properties"]["versions"]["items"]["properties"]
    assert compare(api.VersionTemplate, template["template"], "template", True) == []
    spec_fields = set(schema_["properties"]["spec"]["properties"])
    steering = {"version", "modelName", "replicas", "batching", "rollout", "podTemplate"}
    assert set(template["template"]["properties"]) == spec_fields - steering


MINIMAL = {
    "ClipperApp": {"spec": {"models": ["m"]}},
    "ModelDeployment": {"spec": {"version": "v1", "framework": "noop"}},
    "canary": {
        "spec": {
            "version": "v1",
            "framework": "onnx",
            "modelUri": "m.onnx",
            "input": {"datatype": "FP32", "shape": [4]},
            "env": [{"name": "A"}],
            "tolerations": [{"key": "gpu"}],
            "rollout": {"strategy": "Canary", "steps": [{"weight": 10}]},
        }
    },
}


@pytest.mark.parametrize("case", MINIMAL)
def test_api_server_defaulting_equals_model_defaults(case: str) -> None:
    kind = "ModelDeployment" if case == "canary" else case
    doc = {"apiVersion": api.API_VERSION, "kind": kind, "metadata": {"name": "x"}, **MINIMAL[case]}
    defaulted = schema.apply_defaults(doc, schema.structural(kind))
    typed = api.KINDS[kind].model_validate(doc).to_dict()
    typed.pop("status")
    assert typed == defaulted
