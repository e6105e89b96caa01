"""A PodDisruptionBudget per model version that runs more than one replica.

Voluntary disruptions (a node drain for an upgrade, the cluster autoscaler
removing a node) then evict a version's replicas one at a time, each replaced
and ready before the next goes, instead of taking the whole version down at
once. The budget is ``maxUnavailable: 1`` rather than ``minAvailable:
replicas - 1``: it stays right as ``spec.replicas`` changes (``kubectl scale``,
an autoscaler) without being rewritten, and it never blocks a drain for good
(``minAvailable`` equal to the replicas would). A version with one replica gets
none: a budget that allows no eviction would block node drains forever, and
one that allows one protects nothing. The operator deletes the budget when the
version scales to zero or one, and the garbage collector with its owner.

It selects exactly the version's pods, with the version's Deployment's own
(immutable) selector.
"""

from __future__ import annotations

from typing import Any

from clipper.common import api
from clipper.operator import naming
from clipper.operator.builders.meta import object_meta
from clipper.operator.builders.model import selector_labels, version_labels

MIN_REPLICAS = 2
"""The fewest replicas for which a version gets a budget."""


def wants_budget(replicas: int) -> bool:
    """Whether a version running ``replicas`` replicas gets a PodDisruptionBudget."""
    return replicas >= MIN_REPLICAS


def build_model_disruption_budget(md: api.ModelDeployment, version: str) -> dict[str, Any]:
    """The PodDisruptionBudget ``<name>-<version>``: one of its replicas down at a time."""
    name = naming.version_name(md.metadata.name, version)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(md, name, version_labels(md, version)),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(md, version)},
            # A replica that is not ready serves nothing: evicting it costs nothing,
            # and a crash-looping one must not block a node drain.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
