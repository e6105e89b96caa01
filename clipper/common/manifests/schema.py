"""Validate an object against a CRD's structural schema the way the API server does.

The CRD's ``openAPIV3Schema`` is OpenAPI 3.0 with Kubernetes extensions; jsonschema
speaks JSON Schema. ``to_jsonschema`` translates: ``x-kubernetes-*`` keys are
dropped, ``nullable`` becomes a ``null`` type, OpenAPI 3.0's boolean
``exclusiveMinimum`` becomes JSON Schema's numeric one, and every object that does not say
``x-kubernetes-preserve-unknown-fields`` gets ``additionalProperties: false`` --
the API server would silently prune an unknown field, and ``kubectl
--validate=strict`` rejects it, as we do, because a misspelt field that is ignored
is a bug the user cannot see. ``apply_defaults`` follows the API server's
defaulting: a missing field takes its default, and defaulting continues inside the
value just set (so ``rollout: {}`` gets ``strategy: Rolling``).

Errors come back as ``(field path, message)`` with paths such as
``spec.rollout.steps[1].weight``.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from collections.abc import Iterator, Sequence
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from clipper.common.api import crds

_DROPPED = {"description", "default", "example", "format", "externalDocs", "nullable"}

# Local manifests carry metadata that the CRD schema does not describe (the API
# server validates ObjectMeta itself). These are the ObjectMeta fields a manifest,
# or the output of `kubectl get -o yaml`, may hold.
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 253},
        "namespace": {"type": "string", "maxLength": 63, "pattern": _DNS_LABEL},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "generation": {"type": "integer", "minimum": 0},
        **{
            key: {}
            for key in (
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generateName",
                "selfLink",
                "finalizers",
                "ownerReferences",
                "managedFields",
            )
        },
    },
}


_QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_PATTERNS = {
    _QUANTITY: "a resource quantity (such as 2, 500m or 4Gi)",
    "^[a-z]([-a-z0-9]*[a-z0-9])?$": (
        "a DNS-1035 label (lowercase letters, digits and '-', starting with a letter)"
    ),
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$": (
        "a DNS label (lowercase letters, digits and '-', starting and ending with one"
        " of the first two)"
    ),
}
"""Plain words for the schema's patterns, instead of the regular expression."""


def to_jsonschema(node: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema (2020-12) equivalent of one structural-schema node."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = to_jsonschema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [to_jsonschema(sub) for sub in value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            if value:  # OpenAPI 3.0's flag on minimum/maximum; JSON Schema's own bound
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                out[key] = node[bound]
        else:
            out[key] = value
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(key):
            out.pop(bound, None)
    preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
    if node.get("type") == "object" and "additionalProperties" not in node and not preserve:
        out["additionalProperties"] = False
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def _object_schema(kind: str) -> dict[str, Any]:
    """The CRD's schema with full ObjectMeta rules merged in for ``metadata``."""
    structural = copy.deepcopy(crds.schema(kind))
    metadata = copy.deepcopy(_METADATA)
    own_name = structural.get("properties", {}).get("metadata", {}).get("properties", {})
    metadata["properties"]["name"].update(
        {k: v for k, v in own_name.get("name", {}).items() if k != "description"}
    )
    structural["properties"]["metadata"] = metadata
    return structural


@functools.cache
def structural(kind: str) -> dict[str, Any]:
    """The structural schema local mode validates ``kind`` with (metadata rules added)."""
    return _object_schema(kind)


@functools.cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(to_jsonschema(structural(kind)))


def apply_defaults(value: Any, node: dict[str, Any]) -> Any:
    """``value`` with the schema's defaults filled in, as the API server defaults."""
    if isinstance(value, dict):
        props = node.get("properties", {})
        out = dict(value)
        for name, sub in props.items():
            if "default" in sub and (name not in out or out[name] is None):
                out[name] = copy.deepcopy(sub["default"])
        extra = node.get("additionalProperties")
        for name in list(out):
            sub = props.get(name) or (extra if isinstance(extra, dict) else None)
            if sub is not None:
                out[name] = apply_defaults(out[name], sub)
        return out
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [apply_defaults(item, node["items"]) for item in value]
    return value


def format_path(parts: Sequence[str | int]) -> str:
    """``["spec", "steps", 1, "weight"]`` -> ``spec.steps[1].weight``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _known(error: ValidationError) -> list[str]:
    node = error.schema
    return list(node.get("properties", {})) if isinstance(node, dict) else []


def _explain(error: ValidationError) -> Iterator[tuple[str, str]]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = _known(error)
        for name in sorted(set(error.instance) - set(known)):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
            yield format_path([*path, name]), f"unknown field{hint}"
    elif error.validator == "required":
        match = re.match(r"^'(.+)' is a required property$", error.message)
        name = match.group(1) if match else "?"
        yield format_path([*path, name]), "required field is missing"
    elif error.validator == "pattern" and error.validator_value in _PATTERNS:
        yield format_path(path), f"{error.instance!r} is not {_PATTERNS[error.validator_value]}"
    else:
        yield format_path(path) or "(object)", error.message


def validate(kind: str, obj: dict[str, Any]) -> list[tuple[str, str]]:
    """Every schema violation in ``obj`` (already defaulted), sorted by field path."""
    found = {pair for error in _validator(kind).iter_errors(obj) for pair in _explain(error)}
    return sorted(found)
