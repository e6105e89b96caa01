"""The objects a ``clipper run`` serves: local mode's API server.

Objects arrive from the ``-f`` paths at start, from ``clipper apply``, and from
watched files that change. Every arrival is an *apply*, with ``kubectl apply``'s
meaning: each object given is created, or replaces the one of the same kind and
name (keeping its status, as the spec is the user's and the status the
controller's); objects not given are left alone, except that a watched file
*prunes* the objects it used to hold and no longer does. Before anything changes,
the whole resulting set is checked -- across objects (an app naming a model that
is not there) and, for new or changed ModelDeployments, that their models exist
-- so a bad edit is refused whole and the running system keeps serving.

``metadata.generation`` counts spec changes as the API server does (1 on create,
+1 on each change of spec), which is what lets the rollout state machine retry a
failed version only after the user changed something.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clipper.common import api
from clipper.common.errors import ConfigError, InvalidManifests
from clipper.common.manifests import Manifests, check_model_uris, semantic
from clipper.common.manifests.loading import key_of

ApiObject = api.ClipperApp | api.ModelDeployment
Result = Literal["created", "configured", "unchanged", "deleted"]


@dataclass(frozen=True)
class Applied:
    """What an apply did to one object."""

    kind: str
    name: str
    result: Result

    def __str__(self) -> str:
        return f"{self.kind.lower()}.clipper.dev/{self.name} {self.result}"


class Store:
    """Every object of the run, with the file each came from."""

    def __init__(self) -> None:
        self.current = Manifests()

    @property
    def apps(self) -> list[api.ClipperApp]:
        return self.current.apps

    @property
    def deployments(self) -> list[api.ModelDeployment]:
        return self.current.deployments

    def deployment(self, name: str) -> api.ModelDeployment | None:
        return next((d for d in self.deployments if d.metadata.name == name), None)

    def apply(
        self, found: Manifests, prune: Collection[Path] = (), check_models: bool = True
    ) -> list[Applied]:
        """Apply ``found``; ``InvalidManifests`` (and no change at all) if the result is bad.

        ``prune``: files whose objects that are not in ``found`` any more are deleted.
        """
        merged = Manifests(sources=dict(self.current.sources))
        results: list[Applied] = []
        changed: list[api.ModelDeployment] = []
        given: dict[tuple[str, str, str], ApiObject] = {key_of(obj): obj for obj in _objects(found)}
        pruned = {p.resolve() for p in prune}

        def put(obj: ApiObject, old: ApiObject | None) -> None:
            result = _carry_over(old, obj)
            merged.sources[key_of(obj)] = found.source(obj)
            _add(merged, obj)
            results.append(Applied(obj.kind, obj.metadata.name, result))
            if isinstance(obj, api.ModelDeployment) and result in ("created", "configured"):
                changed.append(obj)

        for obj in self._objects():  # in place, so the order of objects stays put
            key = key_of(obj)
            if key in given:
                put(given.pop(key), obj)
            elif self.current.sources[key].path.resolve() in pruned:
                del merged.sources[key]
                results.append(Applied(obj.kind, obj.metadata.name, "deleted"))
            else:
                _add(merged, obj)
        for obj in given.values():
            put(obj, None)
        errors = semantic.check(merged) + _namespace_clashes(merged)
        if check_models and not errors:
            errors += check_model_uris(Manifests(deployments=changed, sources=merged.sources))
        if errors:
            raise InvalidManifests(errors)
        self.current = merged
        return results

    def changed_deployments(self, found: Manifests) -> list[api.ModelDeployment]:
        """The ModelDeployments of ``found`` that are new or whose spec differs from ours:
        the ones whose models must be checked (in a thread: it may import modules)."""
        ours = {key_of(d): d for d in self.deployments}
        return [
            d for d in found.deployments if key_of(d) not in ours or ours[key_of(d)].spec != d.spec
        ]

    def _objects(self) -> list[ApiObject]:
        return _objects(self.current)


def _objects(found: Manifests) -> list[ApiObject]:
    return [*found.apps, *found.deployments]


def _add(found: Manifests, obj: ApiObject) -> None:
    if isinstance(obj, api.ClipperApp):
        found.apps.append(obj)
    else:
        found.deployments.append(obj)


def _carry_over(old: ApiObject | None, new: ApiObject) -> Result:
    """Give ``new`` the generation and status it inherits from ``old``; what happened."""
    if old is None:
        new.metadata.generation = 1
        new.status = type(new.status)()
        return "created"
    generation = old.metadata.generation or 1
    same_spec = old.spec == new.spec
    new.metadata.generation = generation if same_spec else generation + 1
    new.status = old.status  # same kind, so the same status type
    if same_spec and old.metadata.labels == new.metadata.labels:
        return "unchanged"
    return "configured"


def _namespace_clashes(found: Manifests) -> list[ConfigError]:
    """Local mode has one namespace of names: the same kind and name twice is an error."""
    errors: list[ConfigError] = []
    seen: dict[tuple[str, str], str] = {}
    for obj in _objects(found):
        namespace = obj.metadata.namespace or "default"
        other = seen.setdefault((obj.kind, obj.metadata.name), namespace)
        if other != namespace:
            errors.append(
                ConfigError(
                    f"also defined in namespace {other!r}: local mode serves one set of names,"
                    " so names must differ across namespaces",
                    found.location(obj, "metadata.namespace"),
                )
            )
    return errors
