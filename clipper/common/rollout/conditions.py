"""The ModelDeployment's conditions, derived from its rollout state.

Conditions are computed from the status every time, never tracked on their own,
so they cannot disagree with it; ``set_condition`` moves ``lastTransitionTime``
only when a condition's status flips, and every condition carries the
``observedGeneration`` it was computed for.

They follow the Kubernetes API conventions, and answer three separate questions,
so that no single one has to stand for the others:

- ``Ready``: does the model serve? True while a version with traffic has a ready
  replica, whichever version that is: a healthy canary, and the stable version
  after a rollback, are Ready. The message says which version(s) serve, with how
  many replicas, and what is rolling out.
- ``Progressing``: is a rollout under way? False once it completed, rolled back,
  or paused on a failure (the reason says which).
- ``Degraded``: is something wrong that needs a person? ``spec.version`` failed its
  rollout (the reason is the cause: ``ProgressDeadlineExceeded``,
  ``VersionFailing``), or the spec was refused (``VersionImmutable``).
- ``Available``: the stable version has a ready replica (kept for those who watch it).
"""

from __future__ import annotations

from datetime import datetime

from clipper.common.api import ModelDeploymentStatus, VersionStatus, set_condition
from clipper.common.api.base import ConditionStatus

IMMUTABLE = "VersionImmutable"
"""The Degraded reason of a spec refused because it changes an existing version."""


def _available(stable: VersionStatus | None) -> tuple[bool, str, str]:
    if stable is None:
        return False, "NoStableVersion", "no version has become ready yet"
    if stable.replicas == 0:
        return False, "ScaledToZero", f"{stable.version} is scaled to zero"
    counts = f"{stable.ready_replicas}/{stable.replicas} replicas ready"
    if stable.ready_replicas == 0:
        return False, "NoReadyReplicas", f"{stable.version}: {counts}"
    return True, "StableServing", f"{stable.version} serves: {counts}"


def _rolling_out(st: ModelDeploymentStatus) -> str:
    """What is rolling out, for the Ready message ("" when nothing is)."""
    candidate = st.version(st.candidate_version)
    if candidate is None:
        return ""
    if candidate.phase == "Failed":
        return f"; the rollout of {candidate.version} is paused: it failed"
    if st.weight(candidate.version) > 0 and st.rollout.step is not None:
        return f"; rolling out {candidate.version} (canary step {st.rollout.step + 1})"
    counts = f"{candidate.ready_replicas}/{candidate.replicas} replicas ready"
    return f"; rolling out {candidate.version} ({counts})"


def _ready(st: ModelDeploymentStatus) -> tuple[bool, str, str]:
    shares = [(st.version(t.version), t.weight) for t in st.traffic if t.weight > 0]
    serving = [(v, w) for v, w in shares if v is not None]
    text = ", ".join(
        f"{v.version} {w}% ({v.ready_replicas}/{v.replicas} replicas ready)" for v, w in serving
    )
    rolling = _rolling_out(st)
    stable = st.version(st.stable_version)
    if stable is not None and stable.replicas == 0:
        return False, "ScaledToZero", f"{stable.version} is scaled to zero{rolling}"
    if any(v.replicas > 0 and v.ready_replicas > 0 for v, _ in serving):
        return True, "Serving", f"serving: {text}{rolling}"
    if serving:
        return False, "NoReadyReplicas", f"no ready replica: {text}{rolling}"
    return False, "NoVersionServing", f"no version serves yet{rolling}"


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


def _degraded(target: VersionStatus | None, refused: str | None) -> tuple[bool, str, str]:
    if refused is not None:
        return True, IMMUTABLE, refused
    if target is not None and target.phase == "Failed":
        return True, target.reason or "RolloutFailed", target.message or ""
    return False, "Healthy", "no failed rollout"


def update(
    st: ModelDeploymentStatus,
    version: str,
    now: datetime,
    generation: int | None,
    refused: str | None = None,
) -> None:
    """Set the four conditions of ``st`` in place; ``version`` is ``spec.version``,
    ``refused`` why the spec was refused (None: it was followed)."""
    target = st.version(version)
    for kind, (ok, reason, message) in (
        ("Ready", _ready(st)),
        ("Available", _available(st.version(st.stable_version))),
        ("Progressing", _progressing(st, target)),
        ("Degraded", _degraded(target, refused)),
    ):
        status: ConditionStatus = "True" if ok else "False"
        set_condition(st.conditions, kind, status, reason, message, now, generation)
