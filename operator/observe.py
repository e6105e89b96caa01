"""What the rollout state machine sees of a version: its Deployment and its pods.

``VersionObservation.ready_replicas`` must count replicas that are ready *and* run
the version's current template. Deployment counters cannot tell that during an
update (``readyReplicas`` mixes old and new ReplicaSets), so the observer counts
pods: ready, not terminating, and labelled with the template hash the status
expects for the version.

A version is *failing* when it cannot start, which the rollout turns into an
immediate rollback rather than waiting for the deadline: a container waiting for
a reason that does not heal by itself (crash loop, image that cannot be pulled,
bad configuration; the container's last termination message says why it exited),
or a Deployment that reports ``ProgressDeadlineExceeded`` or a
``ReplicaFailure`` (pods refused, e.g. by quota or Pod Security admission). A pod
that is merely Pending (no node fits yet; a cluster autoscaler may add one) is not
failing: the rollout's own ``progressDeadlineSeconds`` decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from clipper.common.rollout import VersionObservation
from clipper.operator import naming

Obj = dict[str, Any]

FAILING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
"""Waiting reasons of a container that will not become ready without a change."""


def labels(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def pod_ready(pod: Obj) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _terminating(obj: Obj) -> bool:
    return obj.get("metadata", {}).get("deletionTimestamp") is not None


def pod_failure(pod: Obj) -> str | None:
    """Why a pod's container cannot start, if it cannot."""
    status = pod.get("status", {})
    containers = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    for container in containers:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FAILING_REASONS:
            name = pod.get("metadata", {}).get("name")
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            restarts = container.get("restartCount", 0)
            return (
                f"pod {name}, container {container.get('name')}: {waiting['reason']}"
                f" ({restarts} restarts){detail}{_last_exit(container)}"
            )
    return None


def _last_exit(container: Obj) -> str:
    """Why the container last exited: its termination message (the model server's
    ERROR line, say ``device cuda was asked for but no GPU is usable``), if any."""
    terminated = (container.get("lastState") or {}).get("terminated") or {}
    message = str(terminated.get("message") or "").strip()
    if not message:
        return ""
    last_line = message.splitlines()[-1]
    return f"; last exit {terminated.get('exitCode')}: {last_line[-MESSAGE_TAIL:]}"


MESSAGE_TAIL = 400
"""Characters of a termination message kept in a status message."""


def deployment_failure(deployment: Obj) -> str | None:
    """Why a Deployment cannot make progress, if it reports so about its current spec.

    Conditions about an older generation do not count: right after a failed version
    is given a new template, its Deployment still says ProgressDeadlineExceeded
    until the Deployment controller has seen the change.
    """
    status = deployment.get("status", {})
    seen = status.get("observedGeneration")
    if seen is None or seen < deployment.get("metadata", {}).get("generation", 0):
        return None
    for condition in status.get("conditions") or []:
        kind, status, reason = (
            condition.get("type"),
            condition.get("status"),
            condition.get("reason"),
        )
        stuck = kind == "Progressing" and status == "False" and reason == "ProgressDeadlineExceeded"
        if stuck or (kind == "ReplicaFailure" and status == "True"):
            return f"Deployment {reason}: {condition.get('message', '')}".rstrip(": ")
    return None


def observe_version(
    deployment: Obj, pods: Iterable[Obj], expected_hash: str | None
) -> VersionObservation:
    """One version, from its Deployment and the pods that carry its labels."""
    wanted = expected_hash or labels(deployment.get("spec", {}).get("template", {})).get(
        naming.LABEL_TEMPLATE_HASH
    )
    current = [
        pod
        for pod in pods
        if not _terminating(pod) and labels(pod).get(naming.LABEL_TEMPLATE_HASH) == wanted
    ]
    ready = sum(1 for pod in current if pod_ready(pod))
    failure = deployment_failure(deployment) or next(
        (reason for pod in current if (reason := pod_failure(pod))), None
    )
    return VersionObservation(
        ready_replicas=ready, failing=failure is not None, message=failure or ""
    )


def observe_versions(
    deployments: Iterable[Obj], pods: Iterable[Obj], hashes: Mapping[str, str]
) -> dict[str, VersionObservation]:
    """Every version that has a Deployment (that is not being deleted), by version.

    ``deployments`` and ``pods`` are one ModelDeployment's (by ``clipper.dev/model``);
    ``hashes`` maps a version to the template hash its status records.
    """
    by_version: dict[str, list[Obj]] = {}
    for pod in pods:
        by_version.setdefault(labels(pod).get(naming.LABEL_VERSION, ""), []).append(pod)
    observed: dict[str, VersionObservation] = {}
    for deployment in deployments:
        version = labels(deployment).get(naming.LABEL_VERSION)
        if version is None or _terminating(deployment):
            continue
        observed[version] = observe_version(
            deployment, by_version.get(version, []), hashes.get(version)
        )
    return observed
