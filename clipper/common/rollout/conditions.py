"""The ModelDeployment's conditions, derived from its rollout state.

Conditions are computed from the status every time, never tracked on their own,
so they cannot disagree with it; ``set_condition`` moves ``lastTransitionTime``
only when a condition's status flips.

- ``Available``: some version serves (the stable version has a ready replica).
- ``Ready``: ``spec.version`` is stable, gets all traffic, with all its replicas ready.
- ``Progressing``: a rollout is under way (False once it completed, failed or paused).
- ``Degraded``: ``spec.version`` failed its rollout; the reason says why.
"""

from __future__ import annotations

from datetime import datetime

from clipper.common.api import ModelDeploymentStatus, VersionStatus, set_condition
from clipper.common.api.base import ConditionStatus


def _available(stable: VersionStatus | None) -> tuple[bool, str, str]:
    if stable is None:
        return False, "NoStableVersion", "no version has become ready yet"
    if stable.replicas == 0:
        return False, "ScaledToZero", f"{stable.version} is scaled to zero"
    counts = f"{stable.ready_replicas}/{stable.replicas} replicas ready"
    if stable.ready_replicas == 0:
        return False, "NoReadyReplicas", f"{stable.version}: {counts}"
    return True, "StableServing", f"{stable.version} serves: {counts}"


def _progressing(st: ModelDeploymentStatus, target: VersionStatus | None) -> tuple[bool, str, str]:
    candidate = st.version(st.candidate_version)
    if candidate is not None and candidate.phase == "Failed":
        return False, "RolloutPaused", candidate.message or f"{candidate.version} failed"
    if candidate is not None:
        step = st.rollout.step
        where = f"at step {step + 1}" if step is not None else f"{candidate.phase.lower()}"
        share = st.weight(candidate.version)
        return True, "RolloutInProgress", f"{candidate.version} {where}, {share}% of traffic"
    if target is not None and target.phase == "Failed":
        return False, "RolledBack", target.message or f"{target.version} failed"
    return False, "RolloutComplete", f"{st.stable_version or 'nothing'} is stable"


def _degraded(target: VersionStatus | None) -> tuple[bool, str, str]:
    if target is not None and target.phase == "Failed":
        return True, target.reason or "RolloutFailed", target.message or ""
    return False, "Healthy", "no failed rollout"


def _ready(st: ModelDeploymentStatus, version: str) -> tuple[bool, str, str]:
    stable = st.version(st.stable_version)
    if st.stable_version != version or st.candidate_version is not None or stable is None:
        return False, "RolloutInProgress", f"{version} is not the stable version yet"
    if stable.replicas == 0:
        return False, "ScaledToZero", f"{version} is scaled to zero"
    if stable.ready_replicas < stable.replicas:
        counts = f"{stable.ready_replicas}/{stable.replicas}"
        return False, "ReplicasNotReady", f"{version}: {counts} replicas ready"
    return True, "Serving", f"{version} serves all traffic with {stable.replicas} replicas"


def update(st: ModelDeploymentStatus, version: str, now: datetime, generation: int | None) -> None:
    """Set the four conditions of ``st`` in place; ``version`` is ``spec.version``."""
    target = st.version(version)
    for kind, (ok, reason, message) in (
        ("Ready", _ready(st, version)),
        ("Available", _available(st.version(st.stable_version))),
        ("Progressing", _progressing(st, target)),
        ("Degraded", _degraded(target)),
    ):
        status: ConditionStatus = "True" if ok else "False"
        set_condition(st.conditions, kind, status, reason, message, now, generation)
