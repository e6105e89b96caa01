"""What every reconcile needs, created once when the operator starts.

kopf hands this object to every handler as ``memo``; the reconcile queue's
workers get it too. It holds no state about the objects themselves: that lives
in their status, so a restarted operator rebuilds nothing.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clipper.common.tasks import TaskRegistry
from clipper.operator.queue import ReconcileQueue
from clipper.operator.settings import OperatorSettings

if TYPE_CHECKING:
    from clipper.operator.kube import Kube

APPS = "clipperapps"
MODELS = "modeldeployments"

Key = tuple[str, str, str]
"""(plural, namespace, name) of an object to reconcile."""


@dataclass
class Context:
    settings: OperatorSettings
    queue: ReconcileQueue[Key]
    kube: Kube | None = None
    """Set by the startup handler, once kopf has logged in."""
    instance: str = field(default_factory=socket.gethostname)
    """This replica, as its Events name it (the pod name in a cluster)."""
    live: set[Key] = field(default_factory=set)
    """The objects seen to exist (the resync revisits only these)."""
    tasks: TaskRegistry = field(default_factory=TaskRegistry)
    """The operator's own long-lived tasks (the reconcile queue); its liveness probe
    fails while one is dead."""

    @property
    def client(self) -> Kube:
        if self.kube is None:
            raise RuntimeError("the operator has not started: no API client yet")
        return self.kube
