"""One object, checked as the API server would check it: kind, schema, CEL rules.

``validate_object`` defaults the object, validates it against its CRD's schema,
then (only if the schema holds, as CEL assumes it does) runs the mirrored CEL
rules, and finally builds the typed model. Every problem found is returned, each a
``ConfigError`` that names where (``file: Kind/name``) and which field.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from clipper.common import api
from clipper.common.errors import ConfigError
from clipper.common.manifests import rules, schema

ApiObject = api.ClipperApp | api.ModelDeployment


def describe(doc: Any, fallback: str) -> str:
    """``Kind/name`` of a manifest document, or ``fallback`` when it has neither."""
    if not isinstance(doc, dict):
        return fallback
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else None
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if kind and isinstance(name, str):
        return f"{kind}/{name}"
    return kind or fallback


def _kind_errors(doc: Any) -> list[tuple[str, str]]:
    if not isinstance(doc, dict):
        return [("(document)", f"expected a mapping (an object), got {type(doc).__name__}")]
    kind, version = doc.get("kind"), doc.get("apiVersion")
    known = " or ".join(api.KINDS)
    if kind not in api.KINDS:
        return [("kind", f"unknown kind {kind!r}: clipper manifests are {known}")]
    if version != api.API_VERSION:
        return [("apiVersion", f"{version!r} is not served: use {api.API_VERSION!r}")]
    return []


def validate_object(doc: Any, where: str) -> tuple[ApiObject | None, list[ConfigError]]:
    """The typed object for one manifest document, or the problems that stop it.

    ``where`` names the document's origin, usually its file; locations read
    ``where: Kind/name: field``.
    """
    label = f"{where}: {describe(doc, 'document')}"
    problems = _kind_errors(doc)
    if problems:
        return None, [ConfigError(message, f"{label}: {field}") for field, message in problems]
    kind: str = doc["kind"]
    defaulted = schema.apply_defaults(doc, schema.structural(kind))
    problems = schema.validate(kind, defaulted) or rules.check(kind, defaulted)
    if problems:
        return None, [ConfigError(message, f"{label}: {field}") for field, message in problems]
    metadata = defaulted["metadata"]
    metadata.setdefault("namespace", "default")
    try:
        return api.KINDS[kind].model_validate(defaulted), []
    except ValidationError as exc:  # the schema and the models disagree: a bug, but say where
        return None, [
            ConfigError(err["msg"], f"{label}: {schema.format_path(list(err['loc']))}")
            for err in exc.errors()
        ]
