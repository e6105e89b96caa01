"""What the rollout state machine sees of a version: its Deployment and its pods.

``VersionObservation.ready_replicas`` must count replicas that are ready *and* run
the version's current template. Deployment counters cannot tell that during an
update (``readyReplicas`` mixes old and new ReplicaSets), so the observer counts
pods: ready, not terminating, and labelled with the template hash the status
expects for the version.

A version is *failing* when it cannot start, which the rollout turns into an
immediate rollback rather than waiting for the deadline: a container waiting for
a reason that does not heal by itself (crash loop, image that cannot be pulled,
bad configuration; the container's last termination message says why it exited;
an init container counts too, so a model that cannot be fetched fails the version
with the fetch's error, as Init:CrashLoopBackOff),
or a Deployment that reports ``ProgressDeadlineExceeded`` or a
``ReplicaFailure`` (pods refused, e.g. by quota or Pod Security admission). A pod
that is merely Pending (no node fits yet; a cluster autoscaler may add one) is not
failing: the rollout's own ``progressDeadlineSeconds`` decides.

Either way the observation's ``message`` names the cause, read from the pods'
status (the only place it is written down): the scheduler's reason for a pod it
cannot place, the kubelet's for an image it cannot pull, and for a crash the last
exit's reason, code and termination message -- not the back-off, which only says
when the kubelet tries again. The rollout quotes it in the version's status, the
Degraded condition and the Event, so ``kubectl describe`` says why without a look
at the pods.
"""

from __future__ import annotations

import contextlib
import json
import re
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
        "ErrImageNeverPull",  # pull policy Never and the image is not on the node
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


_INIT = "clipper.dev/init"
"""Marks an init container's status in ``_containers``' list (for ``_where``)."""


def _containers(pod: Obj) -> list[Obj]:
    """Init containers first: while one fails (a model that cannot be fetched), the
    model container only waits in PodInitializing, which says nothing."""
    status = pod.get("status", {})
    return [
        *({**c, _INIT: True} for c in status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]


def pod_failure(pod: Obj) -> str | None:
    """Why a pod's container cannot start, if it cannot: the waiting reason, and for a
    crash loop the last exit (its reason, code and termination message) instead of
    the kubelet's back-off, which says only when it will try again."""
    for container in _containers(pod):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason not in FAILING_REASONS:
            continue
        restarts = container.get("restartCount", 0)
        head = f"{_where(pod, container)}: {reason} ({restarts} restarts)"
        exit_ = _exit(container, "lastState")
        if exit_:
            return f"{head}; last exit {exit_}"
        return f"{head}: {waiting['message']}" if waiting.get("message") else head
    return None


def pod_pending(pod: Obj) -> str | None:
    """Why a pod that is not failing is not ready yet, if its status says: the
    scheduler's reason (no node fits), or a container that exited with an error and
    is about to be restarted. Not a failure by itself (a node may come), but the
    cause a deadline rollback names."""
    conditions = pod.get("status", {}).get("conditions") or []
    for condition in conditions:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            name = pod.get("metadata", {}).get("name")
            reason = condition.get("reason") or "NotScheduled"
            detail = str(condition.get("message") or "").strip()
            return shorten(f"pod {name}: {reason}: {detail}".rstrip(": "))
    for container in _containers(pod):
        exit_ = _exit(container, "state") or _exit(container, "lastState")
        if exit_:
            return f"{_where(pod, container)}: exited {exit_}"
    return None


def _where(pod: Obj, container: Obj) -> str:
    kind = "init container" if container.get(_INIT) else "container"
    return f"pod {pod.get('metadata', {}).get('name')}, {kind} {container.get('name')}"


def _exit(container: Obj, which: str) -> str:
    """How the container's ``state`` or ``lastState`` ended, if it ended in an error:
    ``Error (code 1): <termination message>``. The model server writes its reason
    as its last ERROR line (``failed to load model 'digits' ... (uri '...'): ...``),
    and the pod's ``FallbackToLogsOnError`` makes the log's tail the message."""
    terminated = (container.get(which) or {}).get("terminated") or {}
    code = terminated.get("exitCode")
    if not terminated or code == 0:
        return ""
    text = f"{terminated.get('reason') or 'Terminated'} (code {code})"
    message = termination_cause(str(terminated.get("message") or ""))
    return f"{text}: {message}" if message else text


def termination_cause(message: str) -> str:
    """The line of a termination message that says why: the last ERROR line of a log
    tail (text or JSON lines), else its last line; shortened to ``MESSAGE_TAIL``."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    errors = [line for line in lines if _ERROR_TEXT.search(line) or '"level": "ERROR"' in line]
    line = (errors or lines)[-1]
    if line.startswith("{"):
        with contextlib.suppress(ValueError, AttributeError):
            line = str(json.loads(line).get("message") or line)
    elif found := _ERROR_TEXT.search(line):
        line = found.group(1)  # without the time, level and logger
    return shorten(line)


_ERROR_TEXT = re.compile(r" (?:ERROR|CRITICAL) \S+ \[[^\]]*\] (.*)$")
"""An error line of ``clipper.common.logs``' text format; group 1 is its message."""


MESSAGE_TAIL = 400
"""Characters of a cause kept in a status message: enough for an error line, short
enough that a condition stays readable (Events are cut at 1 KiB, see builders)."""


def shorten(text: str, limit: int = MESSAGE_TAIL) -> str:
    """``text``, cut in the middle if it is longer than ``limit``: the start names
    what failed, the end usually says why."""
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


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
    if failure is not None:
        return VersionObservation(ready_replicas=ready, failing=True, message=shorten(failure))
    waiting = [pod for pod in current if not pod_ready(pod)]
    cause = next((reason for pod in waiting if (reason := pod_pending(pod))), "")
    return VersionObservation(ready_replicas=ready, message=cause)


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
