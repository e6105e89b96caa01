"""A ClipperApp's ``StateBackendReachable`` condition, from what its frontends report.

Every frontend knows whether it reaches its selection-state backend (Redis) and
since when it does not; it says so in the document the operator already reads
from each frontend pod for rollout analysis (``GET /v1/stats/versions``, its
``state_backend`` field: ``clipper.common.fleet_stats``). The operator
aggregates those reports into one condition, instead of letting a hundred
replicas overwrite it (and ``clipper run`` does the same from the reads of its
frontend processes, for ``clipper status``):

- True (``Reachable``): every frontend that answered reaches the backend.
- False (``StateBackendUnreachable``): some do not; the message says how many of how many,
  since when (the earliest outage reported) and the error one of them saw.
- Unknown (``NoReports``): no frontend answered (none ready yet, or none
  reachable from the operator); nothing is claimed either way.
- True (``InProcess``) for ``backend: memory``: each frontend keeps its state in
  its own process, which cannot be unreachable, so no frontend is read.

Pure, so the test of the rule needs no cluster and no frontend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clipper.common import api
from clipper.common.api.base import ConditionStatus

TYPE = "StateBackendReachable"


@dataclass(frozen=True, slots=True)
class StateReport:
    """One frontend's word on its selection-state backend."""

    backend: str
    reachable: bool
    unreachable_since: float | None = None
    """Epoch seconds, while unreachable."""
    error: str = ""


def report_of(document: Mapping[str, Any]) -> StateReport | None:
    """The report in a frontend's ``/v1/stats/versions`` document (None: it has none)."""
    shown = document.get("state_backend")
    if not isinstance(shown, Mapping) or not isinstance(shown.get("reachable"), bool):
        return None
    since = shown.get("unreachable_since")
    return StateReport(
        backend=str(shown.get("backend") or ""),
        reachable=shown["reachable"],
        unreachable_since=float(since) if isinstance(since, int | float) else None,
        error=str(shown.get("error") or ""),
    )


def reports_of(documents: Sequence[Mapping[str, Any]]) -> list[StateReport]:
    """The reports of the documents that carry one."""
    return [r for r in (report_of(doc) for doc in documents) if r is not None]


def _at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def state_condition(
    backend: str, pods: int, reports: Sequence[StateReport]
) -> tuple[ConditionStatus, str, str]:
    """(status, reason, message) of the condition, for an app whose ``spec.state.backend``
    is ``backend``, read from ``pods`` ready frontends (pods; local mode: processes) of
    which ``reports`` answered."""
    if backend == "memory":
        return "True", "InProcess", "spec.state.backend is memory: each frontend keeps its own"
    silent = pods - len(reports)
    unheard = f"; {silent} of {pods} frontends did not answer" if silent > 0 else ""
    if not reports:
        if pods == 0:
            return "Unknown", "NoReports", "no ready frontend to ask"
        return "Unknown", "NoReports", f"none of the {pods} ready frontends answered"
    down = [r for r in reports if not r.reachable]
    if not down:
        return (
            "True",
            "Reachable",
            f"all {len(reports)} frontends that answered reach the {backend} backend{unheard}",
        )
    times = [r.unreachable_since for r in down if r.unreachable_since is not None]
    first = min(down, key=lambda r: r.unreachable_since or float("inf"))
    since = f" since {_at(min(times))}" if times else ""
    error = f" ({first.error})" if first.error else ""
    return (
        "False",
        "StateBackendUnreachable",
        f"{len(down)} of {len(reports)} frontends report the {backend} backend unreachable"
        f"{since}{error}; they serve on their last state and learn alone{unheard}",
    )


def set_state_condition(
    conditions: list[api.Condition],
    backend: str,
    pods: int,
    reports: Sequence[StateReport],
    now: datetime,
    generation: int | None = None,
) -> None:
    """Set ``StateBackendReachable`` in ``conditions`` (transition time kept while the
    status stays)."""
    status, reason, message = state_condition(backend, pods, reports)
    api.set_condition(conditions, TYPE, status, reason, message, now, generation)
