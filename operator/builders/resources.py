"""Containers' resources: what the user asked for, plus default requests.

A pod without requests is BestEffort: the scheduler packs it anywhere and the
kubelet evicts it first under memory pressure, which for a serving system is
an outage at the worst moment. So every container the operator creates requests
CPU and memory, defaulting what the CR leaves unset (operator settings
``--model-cpu-request`` and friends). A resource the user *limits* without
requesting gets no default request: Kubernetes then requests the limit, and a
default above the limit would make the pod invalid. Limits are never invented:
a default CPU limit throttles latency for nothing, and a memory limit has to be
sized per model.
"""

from __future__ import annotations

from typing import Any

from clipper.common import api


def container_resources(
    wanted: api.ResourceRequirements | None, defaults: dict[str, str]
) -> dict[str, Any]:
    """``resources`` of a container: ``wanted`` (quantities as strings) with default requests."""
    given = (wanted or api.ResourceRequirements()).to_dict()
    limits = {k: str(v) for k, v in (given.get("limits") or {}).items()}
    requests = {k: str(v) for k, v in (given.get("requests") or {}).items()}
    for name, quantity in defaults.items():
        if name not in requests and name not in limits:
            requests[name] = quantity
    return {key: value for key, value in (("limits", limits), ("requests", requests)) if value}
