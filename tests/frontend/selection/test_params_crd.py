"""The CRD's ``selectionPolicy.parameters`` and the policies' parameter models agree.

The CRD rejects a bad parameter at ``kubectl apply`` (and local mode at load); the
frontend checks again when it loads the app (defence in depth). These tests keep
the two the same: per policy type the same parameter names, and per parameter the
same type and bounds, so no value passes one check and fails the other.
"""

from __future__ import annotations

from typing import Any

import pytest

from clipper.common.api import crds
from clipper.common.manifests import rules
from clipper.frontend.selection.factory import POLICIES


def crd_policy() -> dict[str, Any]:
    return dict(crds.schema("ClipperApp")["properties"]["spec"]["properties"]["selectionPolicy"])


def crd_parameters() -> dict[str, Any]:
    return dict(crd_policy()["properties"]["parameters"]["properties"])


def crd_accepts(policy: str) -> set[str]:
    """The parameter names the CRD lets ``policy`` have."""
    limited = rules.POLICY_PARAMETERS
    return {p for p in crd_parameters() if p not in limited or policy in limited[p]}


def test_the_crd_knows_every_policy() -> None:
    assert crd_policy()["properties"]["type"]["enum"] == list(POLICIES)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_each_policy_takes_the_parameters_the_crd_allows_it(policy: str) -> None:
    assert crd_accepts(policy) == set(POLICIES[policy].Params.model_fields)


def test_the_crd_has_a_rule_for_each_policy_specific_parameter() -> None:
    texts = {rule["rule"] for path, rule in rules.cel_rules("ClipperApp")}
    for parameter in rules.POLICY_PARAMETERS:
        assert any(f"self.parameters.{parameter})" in text for text in texts), parameter


def _pydantic_bounds(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic field's JSON schema in the CRD's words (OpenAPI 3.0 bounds)."""
    options = schema.get("anyOf", [schema])
    node = next(o for o in options if o.get("type") != "null")
    out: dict[str, Any] = {"type": node.get("type", "string")}
    if "enum" in node:
        out["enum"] = node["enum"]
    if "const" in node:
        out["enum"] = [node["const"]]
    for key in ("minimum", "maximum"):
        if key in node:
            out[key] = node[key]
    if "exclusiveMinimum" in node:
        out.update(minimum=node["exclusiveMinimum"], exclusiveMinimum=True)
    return out


def _crd_bounds(node: dict[str, Any]) -> dict[str, Any]:
    keys = ("type", "enum", "minimum", "maximum", "exclusiveMinimum")
    return {k: node[k] for k in keys if k in node}


@pytest.mark.parametrize("parameter", sorted(crd_parameters()))
def test_each_parameter_has_the_same_type_and_bounds(parameter: str) -> None:
    node = crd_parameters()[parameter]
    for policy, cls in POLICIES.items():
        if parameter in cls.Params.model_fields:
            field = cls.Params.model_json_schema()["properties"][parameter]
            assert _crd_bounds(node) == _pydantic_bounds(field), policy
