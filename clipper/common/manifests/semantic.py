"""Checks across objects, which no single object's schema can make.

Duplicate names, an app that names a ModelDeployment that is not there (or a
selector that selects none), two models of one app that claim the same model
name, and (local mode only) a state backend URL in a Secret. The operator makes
the same checks against the cluster and turns them into conditions; local mode
refuses to start.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from clipper.common import api
from clipper.common.errors import ConfigError
from clipper.common.manifests.loading import Manifests, key_of


def model_name_clashes(models: list[api.ModelDeployment]) -> dict[str, list[str]]:
    """Model names served by more than one of ``models``, with the ModelDeployments' names."""
    claims: dict[str, list[str]] = {}
    for model in models:
        claims.setdefault(model.model_name, []).append(model.metadata.name)
    return {name: owners for name, owners in claims.items() if len(owners) > 1}


def _app_errors(
    found: Manifests, app: api.ClipperApp, invalid: Collection[str]
) -> Iterator[ConfigError]:
    if app.spec.models is not None:
        present = {d.metadata.name for d in found.models_of(app)}
        for index, name in enumerate(app.spec.models):
            if name not in present and name not in invalid:
                yield ConfigError(
                    f"ModelDeployment {name!r} is not defined in the manifests"
                    f" (namespace {app.metadata.namespace})",
                    found.location(app, f"spec.models[{index}]"),
                )
    elif not found.models_of(app) and not invalid:
        yield ConfigError(
            "selects no ModelDeployment in the manifests", found.location(app, "spec.modelSelector")
        )
    if app.spec.state.secret_ref is not None:
        yield ConfigError(
            "names a Kubernetes Secret, and local mode has no Secrets: give spec.state.url "
            "instead (a Redis without a password, e.g. redis://127.0.0.1:6379/0)",
            found.location(app, "spec.state.secretRef"),
        )
    for model_name, owners in model_name_clashes(found.models_of(app)).items():
        yield ConfigError(
            f"ModelDeployments {' and '.join(owners)} both serve the model name {model_name!r};"
            " set spec.modelName on one of them",
            found.location(app, "spec.models" if app.spec.models else "spec.modelSelector"),
        )


def check(found: Manifests, invalid: Collection[str] = ()) -> list[ConfigError]:
    """Every problem between the objects of ``found``.

    ``invalid`` names ModelDeployments that are in the manifests but failed their own
    validation: an app that names one is not also told that it is missing.
    """
    errors: list[ConfigError] = []
    for app in found.apps:
        errors.extend(_app_errors(found, app, invalid))
    return errors


def duplicate_error(
    found: Manifests, obj: api.ClipperApp | api.ModelDeployment, where: str
) -> ConfigError | None:
    """An error if an object of the same kind, namespace and name was read already."""
    first = found.sources.get(key_of(obj))
    if first is None:
        return None
    return ConfigError(
        f"defined twice: also in {first.path} (document {first.document})",
        f"{where}: {obj.kind}/{obj.metadata.name}: metadata.name",
    )
