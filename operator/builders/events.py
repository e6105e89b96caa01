"""A Kubernetes Event about a ClipperApp or ModelDeployment.

The operator posts its Events itself rather than through ``kopf.event``: kopf's
poster is bound to the task that handles a watch event, while the operator's
reconciles run in its own work queue (see ``clipper.operator.queue``). They are
core/v1 Events, which ``kubectl describe`` and ``kubectl events`` show.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clipper.operator import naming

MESSAGE_LIMIT = 1024
"""The API server refuses longer Event messages."""


def build_event(
    involved: dict[str, Any],
    type_: str,
    reason: str,
    message: str,
    now: datetime,
    instance: str,
) -> dict[str, Any]:
    """An Event on ``involved`` (an object as read from the API: kind, metadata)."""
    meta = involved["metadata"]
    text = message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 3] + "..."
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": text,
        "source": {"component": naming.COMPONENT},
        "reportingComponent": f"clipper.dev/{naming.COMPONENT}",
        "reportingInstance": instance,
        "action": "Reconcile",
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),  # orders events within a second
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
