"""The backend the settings ask for."""

from __future__ import annotations

from clipper.frontend.settings import FrontendSettings
from clipper.frontend.state.base import SelectionState
from clipper.frontend.state.memory import MemoryState


def make_state(settings: FrontendSettings) -> SelectionState:
    if settings.state_backend == "redis":
        from clipper.frontend.state.redis_backend import RedisState  # redis-py only when asked

        assert settings.state_url is not None  # FrontendSettings checks it
        return RedisState(settings.state_url, settings)
    return MemoryState(settings.feedback_max_bytes, settings.seed)
