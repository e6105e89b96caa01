"""Read manifests from files and directories, the way ``kubectl apply -f`` does.

A path is a YAML or JSON file (several documents separated by ``---``, or a
``kind: List``), or a directory whose ``*.yaml``, ``*.yml`` and ``*.json`` files are
read in name order (not recursively). Each object remembers where it came from,
so that every later error -- a missing model file, a failed rollout -- can still
name the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clipper.common import api
from clipper.common.errors import ConfigError

SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Source:
    """Where an object was read from."""

    path: Path
    document: int
    """1-based position of the document in its file."""

    @property
    def base_dir(self) -> Path:
        """The directory that relative paths in the object are relative to."""
        return self.path.parent


@dataclass
class Manifests:
    """Valid ClipperApps and ModelDeployments, with the file each came from."""

    apps: list[api.ClipperApp] = field(default_factory=list)
    deployments: list[api.ModelDeployment] = field(default_factory=list)
    sources: dict[tuple[str, str, str], Source] = field(default_factory=dict)
    """By (kind, namespace, name)."""

    def source(self, obj: api.ClipperApp | api.ModelDeployment) -> Source:
        return self.sources[key_of(obj)]

    def location(self, obj: api.ClipperApp | api.ModelDeployment, field_path: str = "") -> str:
        """``file: Kind/name[: field]`` for an error about ``obj``."""
        text = f"{self.source(obj).path}: {obj.kind}/{obj.metadata.name}"
        return f"{text}: {field_path}" if field_path else text

    def models_of(self, app: api.ClipperApp) -> list[api.ModelDeployment]:
        """The app's ModelDeployments that are present (see ``ClipperApp.select_models``)."""
        return app.select_models(self.deployments)


def key_of(obj: api.ClipperApp | api.ModelDeployment) -> tuple[str, str, str]:
    return (obj.kind, obj.metadata.namespace or "default", obj.metadata.name)


def manifest_files(path: Path) -> list[Path]:
    """The files ``path`` names: itself, or its manifest files in name order."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
    return [path]


def _flatten(doc: Any) -> Iterator[Any]:
    if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        yield from doc["items"]
    elif doc is not None:
        yield doc


def read_documents(paths: Iterable[Path]) -> tuple[list[tuple[Source, Any]], list[ConfigError]]:
    """Every document in the files ``paths`` name, and the files that could not be read."""
    docs: list[tuple[Source, Any]] = []
    errors: list[ConfigError] = []
    for given in paths:
        if not given.exists():
            errors.append(ConfigError("no such file or directory", str(given)))
            continue
        files = manifest_files(given)
        if not files:
            errors.append(ConfigError(f"no {', '.join(SUFFIXES)} files in it", str(given)))
        for path in files:
            try:
                loaded = list(yaml.safe_load_all(path.read_text()))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                errors.append(ConfigError(f"cannot read it: {exc}", str(path)))
                continue
            items = (item for doc in loaded for item in _flatten(doc))
            docs.extend((Source(path, number), item) for number, item in enumerate(items, 1))
    return docs, errors
