"""The pieces every Clipper resource shares: the model base, metadata, conditions.

The CRD YAML in ``crds/`` is the one source of the API; these pydantic models mirror
it so that local mode and the operator read and write objects as types instead of
dicts. Field names are snake_case in Python and camelCase on the wire (``alias``),
and both spellings are accepted on input. Validation (patterns, minimums, CEL rules)
lives in the CRD schema and in ``clipper.common.manifests``, not here: these are the
shapes, and ``tests/common/test_api_parity.py`` keeps their fields, enums and
defaults identical to the CRDs'.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

GROUP = "clipper.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ApiModel(BaseModel):
    """Base of every API type: camelCase on the wire, no unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    def to_dict(self) -> dict[str, Any]:
        """The object as the Kubernetes API writes it: camelCase, unset fields left out."""
        return self.model_dump(mode="json", exclude_none=True)


class ObjectMeta(ApiModel):
    """The part of Kubernetes' ObjectMeta that Clipper reads; the rest is kept as is."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    generation: int | None = None
    """Bumped by the API server on every spec change; local mode counts the same way."""
    uid: str | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """A condition in the shape of metav1.Condition."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: datetime
    observed_generation: int | None = None


class LabelRequirement(ApiModel):
    """One requirement of a label selector."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        inside = present and labels[self.key] in (self.values or [])
        return inside if self.operator == "In" else not inside


class LabelSelector(ApiModel):
    """A Kubernetes label selector; an empty one selects everything."""

    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelRequirement] | None = None

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        wanted = self.match_labels or {}
        if any(labels.get(key) != value for key, value in wanted.items()):
            return False
        return all(req.matches(labels) for req in self.match_expressions or [])


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> bool:
    """Set a condition in place; ``lastTransitionTime`` moves only when the status does.

    Returns whether the status changed (a transition worth an Event).
    """
    old = find_condition(conditions, type_)
    changed = old is None or old.status != status
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=now if changed or old is None else old.last_transition_time,
        observed_generation=generation,
    )
    if old is None:
        conditions.append(new)
    else:
        conditions[conditions.index(old)] = new
    return changed


Quantity = int | str
"""A Kubernetes resource quantity: 2, "500m", "4Gi"."""


class ResourceRequirements(ApiModel):
    """A container's resources: limits and requests by resource name."""

    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None


class TensorSignature(ApiModel):
    """An input signature: the shape of one row, without the batch dimension."""

    name: str = "input"
    datatype: Literal[
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
        "FP16", "FP32", "FP64", "BYTES",
    ]  # fmt: skip
    shape: list[int]
