"""The rollout state machine that local mode and the operator both drive.

``reconcile(spec, status, observed, now, generation, fleet) -> Plan``: pure, no
I/O. See ``machine`` for the states and transitions, ``plan`` for what the actions
mean to each controller, ``analysis`` for how a canary step is judged on what the
frontends counted (``fleet``), ``sequential`` and ``shadow`` for how a Shadow
rollout (and keepBest) is judged on the labels both versions were scored on.
"""

from clipper.common.rollout.machine import reconcile
from clipper.common.rollout.plan import (
    Action,
    DeleteVersion,
    EnsureVersion,
    Event,
    Plan,
    ScaleVersion,
    VersionObservation,
)

__all__ = [
    "Action",
    "DeleteVersion",
    "EnsureVersion",
    "Event",
    "Plan",
    "ScaleVersion",
    "VersionObservation",
    "reconcile",
]
