"""The in-process backend: the policies hold the state, ``FeedbackStore`` the log.

Nothing to flush or refresh: ``learned`` is a no-op because the policy already
applied its update. Feedback reaches only the process that answered the query,
and a restart starts afresh: right for local mode and a single frontend, and
why more than one worker process needs a shared backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from clipper.frontend.feedback import FeedbackStats, FeedbackStore, Remembered
from clipper.frontend.selection import Selection
from clipper.frontend.selection.policy import Deltas
from clipper.frontend.state.base import Learner, SelectionState, StateStats


class MemoryState(SelectionState):
    name = "memory"
    shared = False

    def __init__(self, max_bytes: int, seed: int | None = None) -> None:
        self.store = FeedbackStore(max_bytes, seed)

    def new_id(self) -> int:
        return self.store.new_id()

    def remember(
        self,
        query_id: int,
        app: str,
        context: str,
        selection: Selection,
        outputs: Mapping[str, np.ndarray],
        versions: Mapping[str, str] | None = None,
    ) -> None:
        self.store.remember(query_id, app, context, selection, outputs, versions)

    async def recall(self, app: str, query_ids: Sequence[int]) -> list[Remembered]:
        return [self.store.get(app, query_id) for query_id in query_ids]

    async def use_up(self, app: str, query_ids: Sequence[int]) -> list[bool]:
        return [self.store.forget(app, query_id) for query_id in query_ids]

    def learned(self, learner: Learner, context: str, deltas: Deltas) -> None:
        return None

    def stats(self) -> StateStats:
        return StateStats(self.name, reachable=True)

    def log_stats(self) -> list[FeedbackStats]:
        return self.store.stats()
