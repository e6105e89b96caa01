"""Semantic checks: what the API server's schema cannot reject, as conditions.

The CRDs reject what a schema can (types, ranges, the CEL rules, among them a GPU
request on a framework that cannot use one). The operator checks every object
it reads *again* with the same rules (``clipper.common.manifests``), because an
object may predate a stricter CRD, or come from a cluster too old for CEL; and
then what only the cluster as a whole can tell:

- a ClipperApp names a ModelDeployment that does not exist (``ModelNotFound``);
- two ModelDeployments of one app claim the same model name (``ModelNameClash``);
- a name the operator must create is taken by an object it does not manage
  (``NameConflict``), e.g. ModelDeployment ``a`` version ``b-c`` and ``a-b``
  version ``c`` would both need ``a-b-c``.

Each is a permanent error of that one object: a condition with the reason, an
Event, no retries until the object (or the cluster) changes. Everything else
keeps being reconciled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clipper.common import api
from clipper.common.manifests import validate_object
from clipper.common.manifests.semantic import model_name_clashes


@dataclass(frozen=True)
class Problem:
    """Why an object cannot be acted on, as a condition and an Event say it."""

    reason: str
    message: str


class Retry(Exception):
    """A problem that goes away by itself (an old object still being collected)."""


def typed(
    raw: dict[str, Any],
) -> tuple[api.ClipperApp | api.ModelDeployment | None, Problem | None]:
    """The typed object from the API's answer, checked as the API server checks it.

    The status is the operator's own: it is checked by its model, not by the rules.
    """
    spec_only = {key: value for key, value in raw.items() if key != "status"}
    meta = raw.get("metadata", {})
    where = meta.get("namespace", "")
    obj, errors = validate_object(spec_only, where)
    if obj is None:
        prefix = f"{where}: {raw.get('kind')}/{meta.get('name')}: "
        text = "; ".join(e.message.removeprefix(prefix) for e in errors)
        return None, Problem("InvalidSpec", text)
    status = type(obj.status).model_validate(raw.get("status") or {})
    return obj.model_copy(update={"status": status}), None


def app_problems(app: api.ClipperApp, models: list[api.ModelDeployment]) -> list[Problem]:
    """What keeps ``app`` from serving as specified, given its namespace's models."""
    problems = []
    present = {m.metadata.name for m in models}
    missing = [name for name in app.spec.models or [] if name not in present]
    if missing:
        names = ", ".join(missing)
        problems.append(Problem("ModelNotFound", f"no ModelDeployment named {names}"))
    for model_name, owners in model_name_clashes(app.select_models(models)).items():
        problems.append(
            Problem(
                "ModelNameClash",
                f"ModelDeployments {' and '.join(owners)} both serve the model name"
                f" {model_name!r}; set spec.modelName on one of them",
            )
        )
    return problems


def controller_uid(obj: dict[str, Any]) -> str | None:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return next((r.get("uid") for r in refs if r.get("controller")), None)


def name_conflict(
    existing: dict[str, Any] | None, owner: api.ClipperApp | api.ModelDeployment
) -> Problem | None:
    """Whether ``existing`` (an object the owner needs to create or update) is another's.

    Raises ``Retry`` when it belongs to a deleted owner of the same kind and name,
    which the garbage collector is about to delete.
    """
    if existing is None or controller_uid(existing) == owner.metadata.uid:
        return None
    refs = existing["metadata"].get("ownerReferences") or []
    mine = {(owner.kind, owner.metadata.name)}
    if any((r.get("kind"), r.get("name")) in mine for r in refs):
        raise Retry(f"{existing['kind']} {existing['metadata']['name']} of a deleted {owner.kind}")
    controller = next(
        (f"{r.get('kind')} {r.get('name')}" for r in refs if r.get("controller")), "no controller"
    )
    return Problem(
        "NameConflict",
        f"{existing['kind']} {existing['metadata']['name']} already exists and belongs to"
        f" {controller}, not to {owner.kind} {owner.metadata.name}",
    )
