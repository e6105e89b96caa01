"""What the rollout state machine reads and what it decides.

The machine sees the world only through ``VersionObservation`` (one per version
that exists) and answers with a ``Plan``: the new status (traffic included), the
complete desired state of every version as actions, the events to record, and
when to call again. The actions are declarative -- each says what a version must
be, not what to change -- so the executor applies them idempotently:

============================  ===============================  =======================
action                        operator                         local mode
============================  ===============================  =======================
``EnsureVersion(v, t, n)``    apply Deployment and headless    run ``n`` model-server
                              Service ``<name>-<v>`` from      processes of template
                              template ``t``, ``n`` replicas   ``t`` (restart on change)
``ScaleVersion(v, 0)``        scale an existing Deployment to  stop the version's
                              zero (keep it, for rollback)     processes
``DeleteVersion(v)``          delete the Deployment and        stop the processes,
                              Service                          forget the version
============================  ===============================  =======================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from clipper.common.api import ModelDeploymentStatus, VersionTemplate


@dataclass(frozen=True)
class VersionObservation:
    """What the executor sees of one version that exists.

    A version that does not exist (no Deployment, no processes) is simply absent
    from the observations.
    """

    ready_replicas: int = 0
    """Replicas that are ready AND run the version's current template: the operator
    counts a Deployment's updated, available replicas once it has observed its
    latest generation; local mode, the processes started from the current template
    that answer their health check."""
    failing: bool = False
    """The version cannot start: crash-looping, an image that cannot be pulled, a
    process that keeps exiting. A failing candidate fails its rollout at once."""
    message: str = ""
    """Why it is failing, for the Degraded condition and the event; for a version
    that is not failing, why it is not ready yet, if known (say, no node fits its
    pods), which a deadline rollback quotes."""


@dataclass(frozen=True)
class EnsureVersion:
    """Make version ``version`` exist, running ``template`` with ``replicas`` replicas."""

    version: str
    template: VersionTemplate
    replicas: int


@dataclass(frozen=True)
class ScaleVersion:
    """Scale version ``version`` to ``replicas`` if it exists; create nothing."""

    version: str
    replicas: int = 0


@dataclass(frozen=True)
class DeleteVersion:
    """Remove version ``version`` entirely, if it exists."""

    version: str


Action = EnsureVersion | ScaleVersion | DeleteVersion


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event for one transition (local mode logs it)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    """The outcome of one reconcile."""

    status: ModelDeploymentStatus
    """The status to write; ``status.traffic`` is what the frontend routes by."""
    actions: tuple[Action, ...] = ()
    """The desired state of every version, to apply idempotently."""
    events: tuple[Event, ...] = ()
    """Transitions made by this reconcile; empty when nothing changed."""
    requeue_after: float | None = None
    """Seconds until a timed transition (a canary pause, a drain, a deadline) is due;
    call ``reconcile`` again by then. None: only a change (spec, observation) matters."""

    def action_for(self, version: str) -> Action | None:
        """The action about ``version``, if any."""
        return next((a for a in self.actions if a.version == version), None)
