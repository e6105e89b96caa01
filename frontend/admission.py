"""Admission control: shed load at the door, before it costs the frontend CPU.

Under overload the cheapest answer is the one given before any work: a 429
with Retry-After, which tells a client (or a load balancer) to back off, costs
a few microseconds, and leaves the CPU to the requests that can still be
answered in time. Two checks, both O(1):

* a limit on rows in flight in the whole frontend, adaptive under the bound
  ``max_inflight_rows``: when the frontend's own CPU is the bottleneck (the
  model's queue stays short, so no queue ever fills), the work the frontend
  holds still cannot grow past what it answers within the objective; a request
  whose rows would pass the limit gets 429 at once (see ``Admission``).
* a request that cannot make its deadline (``shed_late``): when the rows
  already queued for a model version are expected to wait, and then be served
  (a batch's measured latency), longer than the request has left
  (``expected_wait``: the queue stands -- the chunk it serves next has waited
  that long, and its rows take that long at the measured drain rate), its rows
  would only wait and become defaults. Without the service time, a request
  whose wait just fitted was admitted, waited, and missed its deadline by the
  batch it then needed: at 256 connections of 16 rows, three admitted rows in
  four became defaults. For a single-model app the request
  gets 429 at the door; an app that selects among models passes that model over
  while another could answer in time, and refuses only when none could
  (``clipper.frontend.queries``).

The deadline counts from the request's arrival (the transport records it
before reading the body), so time spent reading a slow body or waiting for the
event loop counts against the SLO too. Shed requests are counted in
``clipper_frontend_shed_requests_total`` by app and reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clipper.common.errors import Overloaded

if TYPE_CHECKING:
    from clipper.frontend.routing.versions import VersionRuntime


class WouldMissDeadline(Overloaded):
    """The rows queued ahead would take longer than the request has left."""


class TooManyInFlight(Overloaded):
    """The frontend holds as many rows as it may."""


class QueueFull(Overloaded):
    """Every version of the model has a full queue (refused at the door)."""


DECREASE = 0.9
"""Factor on the limit after a request that missed its objective."""
INCREASE = 64.0
"""Rows added to the limit per limit's worth of rows answered in time (while under
the bound): additive increase per round trip, as TCP's congestion avoidance adds
one segment per window. One row per row answered, as before, doubled the limit
every round trip: under a sustained overload half the requests on time outgrew
the cuts of the late half, the limit stayed at its bound, and three admitted
rows in four became defaults (256 connections of 16 rows)."""
FLOOR = 0.1
"""The limit never drops below this share of ``max_rows``."""


class Admission:
    """Rows in flight in the frontend, against an adaptive limit under a fixed bound.

    The limit adapts as AIMD does for a batch (and TCP for a window): a request
    that got a default because the objective passed (``slo``) cuts it by
    ``DECREASE`` -- at most once per objective, since the requests in flight
    together miss together -- and rows answered in time raise it again by
    ``INCREASE`` rows per limit's worth answered, up to ``max_rows``. So the rows
    held settle near what the frontend and its models can answer within the
    objective (Little's law), whichever is the bottleneck, and what is beyond
    gets 429 at once instead of a default later.
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.limit = float(max_rows)
        self.rows = 0
        self._floor = max(1.0, max_rows * FLOOR)
        self._cut_at = float("-inf")

    @property
    def full(self) -> bool:
        return self.rows >= self.limit

    def enter(self, rows: int) -> None:
        """Admit ``rows`` more, or raise ``TooManyInFlight`` (a 429). A request larger
        than the limit is admitted when nothing else is in flight, so it never starves."""
        if self.rows + rows > self.limit and self.rows > 0:
            raise self.refusal(rows)
        self.rows += rows

    def refusal(self, rows: int | None = None) -> TooManyInFlight:
        has = "" if rows is None else f", this request has {rows}"
        return TooManyInFlight(
            f"the frontend is at its limit of {self.limit:.0f} rows in flight "
            f"(bound {self.max_rows}; {self.rows} now{has}); retry later"
        )

    def leave(self, rows: int) -> None:
        self.rows -= rows

    def answered(self, rows: int, late: bool, now: float, slo_s: float) -> None:
        """A request's ``rows`` were answered; ``late``: some got the ``slo`` default."""
        if late:
            if now - self._cut_at >= slo_s:
                self.limit = max(self._floor, self.limit * DECREASE)
                self._cut_at = now
        elif self.limit < self.max_rows:
            self.limit = min(float(self.max_rows), self.limit + rows * INCREASE / self.limit)


def expected_wait(version: VersionRuntime, now: float) -> float:
    """Seconds rows queued for ``version`` now should wait: the smaller of two
    estimates, so that load is shed only when both agree. The queued rows at the
    measured drain rate (per replica, so divided by the replicas up) alone
    overestimates when the queue has been short (small batches drain slowly);
    how long the chunk at the head has waited alone overestimates right after
    a burst. Both are large only when the queue really stands.

    The head is the chunk the queue serves next (the earliest deadline), not
    always the one queued first: its wait is the queue's sojourn time, as CoDel
    measures it at the head. With one objective per version the two are the same
    chunk (a deadline is arrival plus the objective); where a version serves apps
    with different objectives, the tight chunks that jump ahead are what a new
    tight request waits behind, and the oldest lax chunk would shed it wrongly."""
    queue = version.queue
    oldest = queue.oldest_enqueued()
    if oldest is None:
        return 0.0
    drain = queue.expected_wait()
    if drain <= 0:
        return 0.0
    replicas = sum(1 for batcher in version.batchers if batcher.replica.up) or 1
    return min(drain / replicas, now - oldest)


def too_late(
    version: VersionRuntime, deadline: float, now: float, service: bool = True
) -> WouldMissDeadline | None:
    """The refusal for rows that would wait in ``version``'s queue past ``deadline`` --
    with ``service``, or could not then be served by it (the wait plus a batch's
    measured time). The door asks with the service time, across an app's versions
    (one that fits admits the request); a drawn version is asked without it
    (``clipper.frontend.queries``), so one version's slow batches -- a canary's cold
    replica -- never turn into 429s for requests another version would answer."""
    if not version.settings.shed_late:
        return None
    wait = expected_wait(version, now)
    if wait <= 0 or wait + (version.queue.service_s if service else 0.0) <= deadline - now:
        return None
    return WouldMissDeadline(
        f"model {version.name} has {version.queue.rows} rows queued, about "
        f"{wait * 1000:.0f} ms of work"
        + (f", and a batch takes {version.queue.service_s * 1000:.0f} ms" if service else "")
        + f": more than the {max(0.0, deadline - now) * 1000:.0f} ms this request has left",
        retry_after=wait,
    )
