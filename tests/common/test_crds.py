"""The CRDs are structural schemas a real API server accepts, and teach the API.

These are the rules kube-apiserver enforces on a CRD (structural schema, defaults
that validate, list types with keys, bounded CEL inputs), checked without one;
tests/controlplane applies the same files to a real API server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from clipper.common.api import crds
from clipper.common.manifests import rules, schema

KINDS = ["ClipperApp", "ModelDeployment"]


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below ``node`` with its path (properties, items, additionalProperties)."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from nodes(node["additionalProperties"], f"{path}{{}}")


def fields(kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named field (a property), except metadata, which ObjectMeta describes."""
    for path, node in nodes(crds.schema(kind)):
        if path and not path.startswith(".metadata") and not path.endswith(("[]", "{}")):
            yield path, node


@pytest.mark.parametrize("kind", KINDS)
def test_the_package_ships_the_repository_crds(kind: str, repo_root: Path) -> None:
    on_disk = yaml.safe_load((repo_root / "crds" / crds.FILES[kind]).read_text())
    assert crds.crd(kind) == on_disk


@pytest.mark.parametrize("kind", KINDS)
def test_names_scope_and_subresources(kind: str) -> None:
    doc = crds.crd(kind)
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
    spec = doc["spec"]
    assert spec["group"] == "clipper.dev"
    assert spec["scope"] == "Namespaced"
    assert doc["metadata"]["name"] == f"{spec['names']['plural']}.clipper.dev"
    assert spec["names"]["categories"] == ["clipper"]
    assert spec["names"]["shortNames"][0] == {"ClipperApp": "capp", "ModelDeployment": "mdep"}[kind]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"]["status"] == {}
    scale = {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    expected = {"ClipperApp": None, "ModelDeployment": scale}[kind]
    assert version["subresources"].get("scale") == expected
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert {"Ready", "Age"} <= set(columns)
    assert {"ClipperApp": "Endpoint", "ModelDeployment": "Traffic"}[kind] in columns


def test_scale_paths_point_at_integer_and_string_fields() -> None:
    """The API server reads the scale paths from the object: they must be real fields."""
    scale = crds.version_of("ModelDeployment")["subresources"]["scale"]
    props = crds.schema("ModelDeployment")["properties"]
    types = {
        path: props[path.split(".")[1]]["properties"][path.split(".")[2]]["type"]
        for path in scale.values()
    }
    assert types == {
        ".spec.replicas": "integer",
        ".status.replicas": "integer",
        ".status.selector": "string",
    }


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_has_a_description(kind: str) -> None:
    missing = [path for path, node in fields(kind) if not node.get("description", "").strip()]
    assert missing == []


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    problems = []
    for path, node in nodes(crds.schema(kind)):
        free = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
            "x-kubernetes-int-or-string"
        )
        if "type" not in node and not free:
            problems.append(f"{path}: no type")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: both properties and additionalProperties")
        if node.get("type") == "array" and "x-kubernetes-list-type" not in node:
            problems.append(f"{path}: arrays say their x-kubernetes-list-type")
        if node.get("x-kubernetes-list-type") == "map":
            items = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                if (
                    key not in items.get("required", [])
                    and "default" not in items["properties"][key]
                ):
                    problems.append(f"{path}: map key {key} is neither required nor defaulted")
        if node.get("x-kubernetes-list-type") == "set" and node["items"].get("type") == "object":
            problems.append(f"{path}: a set of objects")
        for required in node.get("required", []):
            if required not in node.get("properties", {}):
                problems.append(f"{path}: requires unknown {required}")
    assert problems == []


@pytest.mark.parametrize("kind", KINDS)
def test_metadata_restricts_only_the_name(kind: str) -> None:
    metadata = crds.schema(kind)["properties"]["metadata"]
    assert set(metadata) == {"type", "properties"}
    assert set(metadata["properties"]) == {"name"}


@pytest.mark.parametrize("kind", KINDS)
def test_defaults_validate_against_their_own_schema(kind: str) -> None:
    for path, node in nodes(crds.schema(kind)):
        if "default" in node:
            defaulted = schema.apply_defaults(node["default"], node)
            errors = list(Draft202012Validator(schema.to_jsonschema(node)).iter_errors(defaulted))
            assert errors == [], f"{path}: {errors}"
            if "enum" in node:
                assert node["default"] in node["enum"], path


def _cel_inputs_bounded(kind: str) -> list[str]:
    """CEL that walks a list or matches a string needs maxItems / maxLength for its cost."""
    unbounded = []
    for path, _rule in rules.cel_rules(kind):
        node = crds.schema(kind)
        for part in path.split(".") if path else []:
            node = node["properties"][part]
        if node.get("type") == "array" and "maxItems" not in node:
            unbounded.append(path)
    return unbounded


@pytest.mark.parametrize("kind", KINDS)
def test_cel_rules_are_bounded_and_all_mirrored(kind: str) -> None:
    assert _cel_inputs_bounded(kind) == []
    in_crd = {(kind, path, rule["rule"]) for path, rule in rules.cel_rules(kind)}
    mirrored = {key for key in rules.MIRRORS if key[0] == kind}
    assert in_crd == mirrored
    for _, rule in rules.cel_rules(kind):
        assert rule["message"].strip(), rule
        assert rule.get("fieldPath", ".x").startswith(".")


@pytest.mark.parametrize("kind", KINDS)
def test_defaults_satisfy_their_nodes_cel_rules_undefaulted(kind: str) -> None:
    """The API server checks ``default: {}`` against the node's CEL rules as it is."""
    for path, rule in rules.cel_rules(kind):
        node = crds.schema(kind)
        for part in path.split(".") if path else []:
            node = node["properties"][part]
        if "default" in node:
            mirror = rules.MIRRORS[(kind, path, rule["rule"])]
            assert mirror(node["default"]), (path, rule["rule"])


def test_printer_columns_point_at_real_fields() -> None:
    for kind in KINDS:
        version = crds.version_of(kind)
        known = {path for path, _ in nodes(crds.schema(kind))}
        for column in version["additionalPrinterColumns"]:
            field = column["jsonPath"].split("[")[0]
            assert field in known or field == ".metadata.creationTimestamp", column
