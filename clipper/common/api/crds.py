"""The CRDs as shipped in the package, for validating manifests without a cluster.

``crds/`` at the top of the repository is the one copy; ``clipper/crds`` links to
it and the wheel carries it as package data, so the YAML that ``kubectl apply``
installs and the YAML that local mode validates against are the same file.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml

from clipper.common.api.base import GROUP, VERSION

FILES = {"ClipperApp": "clipperapps.yaml", "ModelDeployment": "modeldeployments.yaml"}
"""The CRD file of each kind, in ``crds/``."""


@functools.cache
def crd(kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of ``kind`` (``ClipperApp`` or ``ModelDeployment``)."""
    text = resources.files("clipper").joinpath("crds", FILES[kind]).read_text()
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def version_of(kind: str) -> dict[str, Any]:
    """The CRD's served ``v1alpha1`` version entry."""
    doc = crd(kind)
    assert doc["spec"]["group"] == GROUP, doc["spec"]["group"]
    return next(v for v in doc["spec"]["versions"] if v["name"] == VERSION)


def schema(kind: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of ``kind``."""
    found: dict[str, Any] = version_of(kind)["schema"]["openAPIV3Schema"]
    return found
