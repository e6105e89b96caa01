"""Metadata every built object shares: owner references, labels, security.

Owner references make the ClipperApp or ModelDeployment the *controller* of what
is built for it, so the garbage collector deletes it all with its owner and
``kubectl get deploy -o wide`` shows who manages it. ``blockOwnerDeletion`` keeps
a foreground deletion of the owner waiting until they are gone.

The owner's own labels (a team, a cost centre) go onto everything built for it,
pods included, so that label-based tooling sees them; keys under ``clipper.dev/``
are the operator's and are never copied, and the operator's labels win a clash.
They never go into a selector: a Deployment's selector is immutable, and a
selector that followed the owner's labels would orphan its pods on a change.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from clipper.common import api
from clipper.operator import naming

Owner = api.ClipperApp | api.ModelDeployment


def owner_reference(owner: Owner) -> dict[str, Any]:
    """The controller reference to ``owner`` (it must have been read from the API)."""
    if not owner.metadata.uid:
        raise ValueError(f"{owner.kind}/{owner.metadata.name} has no uid: read it from the API")
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.metadata.name,
        "uid": owner.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


RESERVED_PREFIX = "clipper.dev/"
"""Label and annotation keys of the operator's own; users' under it are not copied."""


def propagated_labels(owner: Owner) -> dict[str, str]:
    """The owner's labels that what is built for it carries too: all but ``clipper.dev/*``."""
    labels = owner.metadata.labels or {}
    return {key: value for key, value in labels.items() if not key.startswith(RESERVED_PREFIX)}


def with_owner_labels(owner: Owner, labels: dict[str, str]) -> dict[str, str]:
    """``labels`` over the owner's propagated labels (the operator's win a clash)."""
    return {**propagated_labels(owner), **labels}


def pod_metadata(
    owner: Owner,
    given: api.PodMetadata | None,
    labels: dict[str, str],
    annotations: dict[str, str],
) -> dict[str, Any]:
    """A pod template's metadata: the owner's labels, then the user's ``podTemplate``
    labels and annotations, then the operator's, which win a clash."""
    given = given or api.PodMetadata()
    return {
        "labels": with_owner_labels(owner, {**(given.labels or {}), **labels}),
        "annotations": {**(given.annotations or {}), **annotations},
    }


def object_meta(owner: Owner, name: str, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    """``metadata`` of an object built for ``owner``, in its namespace, with its labels."""
    return {
        "name": name,
        "namespace": owner.metadata.namespace,
        "labels": with_owner_labels(owner, labels),
        "ownerReferences": [owner_reference(owner)],
        **extra,
    }


def common_labels(name: str, instance: str, component: str) -> dict[str, str]:
    """The recommended ``app.kubernetes.io/*`` labels, managed by the operator."""
    return {
        naming.NAME: name,
        naming.INSTANCE: instance,
        naming.PART: component,
        naming.PART_OF: "clipper",
        naming.MANAGED_BY: naming.COMPONENT,
    }


def stable_hash(value: Any, length: int = 10) -> str:
    """A short hash of a JSON-able value that does not depend on key order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""Pod security that the ``restricted`` Pod Security Standard asks for; Clipper's
images run as uid 10001."""

CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
