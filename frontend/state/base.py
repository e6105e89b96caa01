"""The selection-state interface every backend implements.

The request path never waits on a backend: ``new_id``, ``remember``, ``learned``
and reading the policy are synchronous and local. A backend that lives elsewhere
(Redis) queues writes and flushes them in the background, and refreshes each
app's policy from its snapshot in the background too (``start``), so learning
between replicas lags by a bounded delay instead of adding latency. Only
feedback may wait on the backend: by query id it reads the query (``recall`` /
``use_up``: another replica may have answered it), and every feedback answer
waits for its update to be written (``commit``), so a label acknowledged is a
label the fleet keeps even if this frontend is killed the next moment.

The state a backend shares is the sum of the policies' updates (``Deltas``: per
model version, per field, an increment), never a policy object, so updates from
many frontends merge by addition and a backend needs no knowledge of any policy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from clipper.common.tasks import TaskRegistry
from clipper.frontend.feedback import FeedbackStats, Remembered
from clipper.frontend.selection import Policy, Selection
from clipper.frontend.selection.policy import Deltas


class Learner(Protocol):
    """An app as a backend sees it (``AppRuntime`` is one)."""

    @property
    def name(self) -> str: ...

    policy: Policy
    arms: dict[str, str]
    """Model -> the key its learned state is kept under (``model@version``)."""


@dataclass(frozen=True, slots=True)
class StateStats:
    """A backend's health and bounds, as ``/metrics`` and the health JSON show them."""

    backend: str
    reachable: bool
    """False while a shared backend cannot be reached (serving goes on, on the last
    snapshot); always True for memory."""
    pending_updates: int = 0
    """Queued (app, context, model version) update keys not yet written."""
    pending_max: int = 0
    dropped_updates: int = 0
    """Updates dropped at the pending bound (lost learning), since start."""
    pending_log_bytes: int = 0
    """Answered queries queued for the shared query log, in bytes."""
    pending_log_max_bytes: int = 0
    dropped_log_entries: int = 0
    """Queued query-log entries dropped at the byte bound (their feedback: 404)."""
    last_error: str = ""
    unreachable_since: float | None = None
    """When (epoch seconds) a shared backend became unreachable, while it is; None
    while it is reachable. The operator's ``StateBackendReachable`` says since when."""

    def report(self) -> dict[str, object]:
        """How the frontend tells the operator (``/v1/stats/versions``'s
        ``state_backend``) and ``/readyz``: backend, reachable, since when not, why."""
        shown: dict[str, object] = {"backend": self.backend, "reachable": self.reachable}
        if self.unreachable_since is not None:
            shown["unreachable_since"] = self.unreachable_since
        if self.last_error:
            shown["error"] = self.last_error
        return shown


class SelectionState(ABC):
    """Learned selection state and the query log of every app a frontend serves."""

    name: ClassVar[str]
    shared: ClassVar[bool]
    """Whether several frontend processes can share it (learn as one)."""

    @abstractmethod
    def new_id(self) -> int:
        """A query id no other query of this backend's apps has."""

    @abstractmethod
    def remember(
        self,
        query_id: int,
        app: str,
        context: str,
        selection: Selection,
        outputs: Mapping[str, np.ndarray],
        versions: Mapping[str, str] | None = None,
    ) -> None:
        """Keep what feedback for ``query_id`` needs (and which version of each model
        answered, for rollout analysis). Never blocks."""

    @abstractmethod
    async def recall(self, app: str, query_ids: Sequence[int]) -> list[Remembered]:
        """Each query's record, in order; ``NotFound`` for an unknown, used-up, evicted or
        expired id; ``Unavailable`` when the backend holding it cannot be reached."""

    @abstractmethod
    async def use_up(self, app: str, query_ids: Sequence[int]) -> list[bool]:
        """Use the ids up; per id, whether this call did (False: another feedback for
        the same query, perhaps on another replica, got there first)."""

    @abstractmethod
    def learned(self, learner: Learner, context: str, deltas: Deltas) -> None:
        """The policy learned ``deltas`` (by model) locally; share them. Never blocks."""

    def inherited(
        self, learner: Learner, contexts: list[str], predecessor: str, arm: str, bound: int
    ) -> None:
        """``arm`` (a new version) starts from ``predecessor``'s state, bounded to
        ``bound`` pseudo-observations (``Policy.prior``), in ``contexts``. The policy
        did it locally; a shared backend does it once for the fleet. Never blocks."""
        return None

    async def commit(self) -> None:
        """Before a feedback answer: write what was learned so far, if the backend can
        take it now (a label acknowledged is then durable); else it stays queued."""
        return None

    async def start(self, apps: Callable[[], Mapping[str, Any]], tasks: TaskRegistry) -> None:
        """Start the background work (flush, refresh) for the apps ``apps()`` returns."""
        return None

    async def close(self) -> None:
        """Flush what can be flushed and release connections."""
        return None

    @abstractmethod
    def stats(self) -> StateStats: ...

    @abstractmethod
    def log_stats(self) -> list[FeedbackStats]:
        """Per app: the query log's entries, bytes and evictions (as this frontend knows)."""
