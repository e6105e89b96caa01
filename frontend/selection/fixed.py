"""Fixed: always the same model -- no learning, no exploration.

For apps with one model, for pinning traffic while debugging, and as the
baseline that the learning policies are measured against. ``model`` defaults to
the first model. If the routing table drops that model, queries go to the first
remaining one (and back to ``model`` when it returns) rather than failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clipper.common.errors import ConfigError
from clipper.frontend.selection.params import PolicyParams
from clipper.frontend.selection.policy import Deltas, Policy, Selection, unique_models


class FixedParams(PolicyParams):
    model: str | None = None
    """The model that answers every query; default: the first of the app's models."""


class Fixed(Policy):
    name = "fixed"
    Params = FixedParams
    params: FixedParams

    def __init__(
        self,
        models: Sequence[str],
        params: Mapping[str, object] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(models, params, seed)
        wanted = self.params.model
        if wanted is not None and wanted not in self._models:
            raise ConfigError(
                f"the fixed policy's model '{wanted}' is not one of the app's models "
                f"{list(self._models)}",
                location="selection.params.model",
            )

    def _current(self) -> str:
        """The model that answers now (the app has at least one)."""
        wanted = self.params.model
        return wanted if wanted is not None and wanted in self._index else self._models[0]

    def select(self, context: str, exclude: frozenset[str] = frozenset()) -> Selection:
        self._require_models()
        model = self._current()
        return Selection((model,), {model: 1.0})

    def update(self, context: str, selection: Selection, losses: Mapping[str, float]) -> Deltas:
        self._known_losses(losses)  # still validated: a bad loss is a caller's bug
        return {}

    def weights(self, context: str = "") -> dict[str, float]:
        if not self._models:
            return {}
        current = self._current()
        return {m: float(m == current) for m in self._models}

    def set_models(self, models: Sequence[str]) -> None:
        self._models = unique_models(models)
        self._index = {m: i for i, m in enumerate(self._models)}
