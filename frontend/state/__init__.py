"""Where the frontend keeps what it learns: selection state and the query log.

One interface (``SelectionState``), two backends: ``memory`` (this process
alone: the policy objects are the state and ``FeedbackStore`` the query log; the
default for local mode and a single frontend) and ``redis`` (one Redis shared by
every frontend replica and worker process, so any replica accepts any feedback
and a restart forgets nothing). ``make_state`` picks one from the settings.
"""

from clipper.frontend.state.base import Learner, SelectionState, StateStats
from clipper.frontend.state.factory import make_state
from clipper.frontend.state.memory import MemoryState

__all__ = ["Learner", "MemoryState", "SelectionState", "StateStats", "make_state"]
