"""How long a pod the operator creates keeps serving after Kubernetes decides to stop it.

Kubernetes removes a terminating pod from its Service's EndpointSlices and sends
the container SIGTERM *at the same time*; kube-proxy, ingress controllers and
the frontends' discovery learn of the removal only a moment later. A process
that closes its listeners on SIGTERM therefore refuses connections that are
still being routed to it. Each pod closes that window in two steps:

1. a ``preStop`` hook that sleeps ``prestop_sleep_s`` before SIGTERM is sent,
   while the process still serves normally. It is Kubernetes' native
   ``lifecycle.preStop.sleep`` action (beta and on by default since 1.30, GA
   since 1.34), not an ``exec`` of ``sleep``, because Clipper's images need no
   shell at run time;
2. the process's own drain after SIGTERM: the model server reports NOT_SERVING
   and keeps answering for ``drain_delay_s`` (``--drain-delay-s``), then
   finishes the calls in flight within ``grace_period_s`` (``--grace-period-s``).
   The frontend does the same for its app's ``spec.frontend.drainDelaySeconds``
   (``/readyz`` 503, gRPC health NOT_SERVING, ``Connection: close`` on every
   answer, so keep-alive clients reconnect to another replica: the preStop
   sleep alone never moves an open connection), then finishes its requests in
   flight within its ``--grace-period-s``.

``terminationGracePeriodSeconds`` counts from the start of the preStop hook, so
it must cover all of it: sleep + drain delay + grace period, plus a margin for
the process to exit. The numbers live here, once; the builders pass the process
its drain delay and grace period as flags, so the sum holds by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

EXIT_MARGIN_S = 5
"""Time left after the process's grace period for it to close and exit."""


@dataclass(frozen=True)
class DrainTimings:
    """One pod's drain: preStop sleep, then the process's drain delay and grace period."""

    prestop_sleep_s: int
    drain_delay_s: float
    grace_period_s: float

    @property
    def termination_grace_s(self) -> int:
        """``terminationGracePeriodSeconds``: long enough for the whole drain."""
        total = self.prestop_sleep_s + self.drain_delay_s + self.grace_period_s
        return math.ceil(total) + EXIT_MARGIN_S

    def lifecycle(self) -> dict[str, Any]:
        """The container's ``lifecycle``: a native preStop sleep (no shell needed)."""
        return {"preStop": {"sleep": {"seconds": self.prestop_sleep_s}}}


PRESTOP_SLEEP_S = 5
"""Seconds between a pod leaving its Service's endpoints and its SIGTERM: the time
kube-proxy, ingresses and the frontends' discovery take to stop routing to it."""

FRONTEND_GRACE_PERIOD_S = 30.0
"""The frontend's ``--grace-period-s``: how long its requests in flight may take."""

MODEL_DRAIN_DELAY_S = 5.0
"""The model server's ``--drain-delay-s``: after SIGTERM it reports NOT_SERVING but
keeps answering this long, so frontends that route by its health switch away first."""

MODEL_GRACE_PERIOD_S = 30.0
"""The model server's ``--grace-period-s``: how long its calls in flight may take."""

FRONTEND = DrainTimings(PRESTOP_SLEEP_S, 5.0, FRONTEND_GRACE_PERIOD_S)
"""A frontend with the CRD's default ``drainDelaySeconds`` (5)."""
MODEL = DrainTimings(PRESTOP_SLEEP_S, MODEL_DRAIN_DELAY_S, MODEL_GRACE_PERIOD_S)


def frontend_timings(app: Any) -> DrainTimings:
    """The drain of ``app``'s frontend pods: its ``spec.frontend.drainDelaySeconds``."""
    return DrainTimings(
        PRESTOP_SLEEP_S, float(app.spec.frontend.drain_delay_seconds), FRONTEND_GRACE_PERIOD_S
    )


def model_server_flags(timings: DrainTimings = MODEL) -> list[str]:
    """The model server's drain flags for ``timings``."""
    return [
        "--drain-delay-s",
        number(timings.drain_delay_s),
        "--grace-period-s",
        number(timings.grace_period_s),
    ]


def number(value: float) -> str:
    """A flag's value: ``5`` rather than ``5.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)
