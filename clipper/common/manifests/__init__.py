"""Load and check ClipperApp and ModelDeployment manifests, with no cluster.

``load`` reads files and directories, validates every object against its CRD
(schema, defaults, the CEL rules mirrored in Python), checks the objects against
one another, and raises ``InvalidManifests`` listing every problem -- each naming
the file, the object and the field -- or returns the typed objects.
``check_model_uris`` is the local-mode check that the models exist; the runner
calls it before starting anything.
"""

from __future__ import annotations

from pathlib import Path

from clipper.common import api
from clipper.common.errors import ConfigError, InvalidManifests
from clipper.common.manifests import semantic
from clipper.common.manifests.loading import Manifests, Source, key_of, read_documents
from clipper.common.manifests.model_uris import (
    check_importable,
    check_model_uris,
    python_path,
    resolve_model_uri,
)
from clipper.common.manifests.validation import describe, validate_object

__all__ = [
    "Manifests",
    "Source",
    "check_importable",
    "check_model_uris",
    "collect",
    "load",
    "python_path",
    "resolve_model_uri",
    "validate_object",
]


def collect(*paths: str | Path, standalone: bool = True) -> tuple[Manifests, list[ConfigError]]:
    """The valid objects in ``paths`` and every problem found (none means all is well).

    ``standalone=False`` checks each object on its own only: the caller merges them
    into a larger set (``clipper apply`` into a running ``clipper run``) and makes
    the checks across objects (``semantic.check``) on that set; no objects at all is
    then not an error either (a file emptied to delete what it held).
    """
    docs, errors = read_documents(Path(p) for p in paths)
    found = Manifests()
    invalid: set[str] = set()
    for source, doc in docs:
        obj, problems = validate_object(doc, str(source.path))
        errors.extend(problems)
        if obj is None:
            kind, _, name = describe(doc, "").partition("/")
            if kind == "ModelDeployment" and name:
                invalid.add(name)
            continue
        duplicate = semantic.duplicate_error(found, obj, str(source.path))
        if duplicate is not None:
            errors.append(duplicate)
            continue
        found.sources[key_of(obj)] = source
        if isinstance(obj, api.ClipperApp):
            found.apps.append(obj)
        else:
            found.deployments.append(obj)
    if not standalone:
        return found, errors
    if not errors and not docs:
        errors.append(ConfigError("no manifests found", ", ".join(str(p) for p in paths)))
    errors.extend(semantic.check(found, invalid))
    return found, errors


def load(*paths: str | Path, check_models: bool = False) -> Manifests:
    """The objects in ``paths``; ``InvalidManifests`` with every problem if there is one.

    ``check_models`` also checks that every model URI exists (local mode).
    """
    found, errors = collect(*paths)
    if check_models:  # the valid objects, even when others are not: every problem at once
        errors.extend(check_model_uris(found))
    if errors:
        raise InvalidManifests(errors)
    return found
