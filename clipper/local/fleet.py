"""Local mode's read of its frontends' per-version counters, for rollout analysis.

A supervised task (``clipper.common.tasks``) reads every frontend of the run
that listens -- the serving one, and one being replaced or starting beside it --
every ``interval_s`` (``clipper.common.fleet_stats``), and keeps the documents.
The runner's reconcile loop, which must not wait on HTTP, takes the latest read
(``fleet``) for each ModelDeployment; a read older than ``max_age_s`` counts as
none, so a dead poll never judges on stale numbers. The same read says whether
each frontend reaches its selection-state backend (``state_reports``: the app's
``StateBackendReachable`` in ``clipper status``, as the operator sets it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from clipper.common.fleet_stats import fleet_of, read_documents
from clipper.common.rollout.analysis import Fleet
from clipper.common.state_condition import StateReport, reports_of

INTERVAL_S = 1.0
MAX_AGE_S = 10.0


class FleetReader:
    """The latest counters of the run's frontends."""

    def __init__(
        self,
        urls: Callable[[], Sequence[str]],
        interval_s: float = INTERVAL_S,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        self._urls = urls
        self.interval_s = interval_s
        self.max_age_s = max_age_s
        self.documents: list[dict[str, Any]] = []
        self.asked = 0
        """How many frontends the latest read asked."""
        self.read_at: float | None = None

    async def run(self) -> None:
        """Read every ``interval_s``, until cancelled."""
        async with aiohttp.ClientSession() as session:
            while True:
                urls = self._urls()
                self.documents = await read_documents(session, urls)
                self.asked = len(urls)
                self.read_at = time.monotonic()
                await asyncio.sleep(self.interval_s)

    def state_reports(self) -> tuple[int, list[StateReport]]:
        """How many frontends the latest read asked, and what those that answered say
        of their selection-state backend (none when the read is missing or too old)."""
        if self.read_at is None or time.monotonic() - self.read_at > self.max_age_s:
            return len(self._urls()), []
        return self.asked, reports_of(self.documents)

    def fleet(self, model: str) -> Fleet:
        """The latest read for ``model``; no reports when it is missing or too old."""
        if self.read_at is None or time.monotonic() - self.read_at > self.max_age_s:
            return Fleet()
        return fleet_of(self.documents, model)
