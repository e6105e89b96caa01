"""The one interface every model-selection policy implements.

A query's life: ``select`` picks the models to ask (one, or all for an
ensemble); the frontend asks them and, at the deadline, hands whatever arrived
to ``combine``; when the client later sends the true label, the frontend scores
each answering model's output with ``loss`` and calls ``update``. The
``Selection`` returned by ``select`` travels with the query to ``combine`` and
``update``, so a policy learns from the probabilities it actually used, even if
its state moved on in between (Exp3's importance weighting needs exactly that).

Policies are pure: no I/O, no clock, no locks (one asyncio loop uses them), and
all randomness comes from one seeded ``numpy.random.Generator``, so a seed
replays the same decisions. ``ContextualPolicy`` holds the per-context state
(bounded, see ``contexts``) and keeps it aligned with the model list when models
come and go; each algorithm only implements what happens to one context's state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from clipper.common.errors import Unavailable
from clipper.frontend.selection.contexts import ContextStates
from clipper.frontend.selection.losses import get_loss
from clipper.frontend.selection.params import PolicyParams, parse_params

S = TypeVar("S")

Deltas = dict[str, dict[str, float]]
"""What one update adds to the learned state, per model (arm): field -> increment.
Every policy's state is a sum of such increments (plus its prior), so updates from
several frontends merge by adding them: what a shared state backend stores."""
Totals = Mapping[str, Mapping[str, float]]
"""The sum of every update so far, per model: field -> total (see ``Deltas``)."""


@dataclass(frozen=True, slots=True)
class Selection:
    """The models to ask for one query, and the weights the policy used."""

    models: tuple[str, ...]
    """One model for exp3, epsilon_greedy, thompson and fixed; all models for exp4."""
    weights: Mapping[str, float]
    """exp4: each model's combination weight (they sum to 1). Single-model policies:
    ``{chosen: probability with which it was drawn}``."""


@dataclass(frozen=True, slots=True)
class Combined:
    """One row's answer and how it came about."""

    output: np.ndarray
    """The row's output: the chosen model's, or the ensemble's combination."""
    answered: tuple[str, ...]
    """The models whose output went into ``output``, in selection order."""
    confidence: float
    """The share of the *selected* models that agree with ``output`` (a model that
    did not answer in time does not agree); 1.0 for a single model."""
    missing: tuple[str, ...]
    """Selected models that had not answered when ``combine`` was called."""


class Policy(ABC):
    """Picks, combines and learns; one instance per app, state per context."""

    name: ClassVar[str]
    Params: ClassVar[type[PolicyParams]] = PolicyParams

    def __init__(
        self,
        models: Sequence[str],
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        self.params = parse_params(self.Params, params or {}, self.name)
        self._models = unique_models(models)
        self._index = {m: i for i, m in enumerate(self._models)}
        self._rng = np.random.default_rng(seed)
        self._loss = get_loss(self.params.loss, self.params.loss_scale)

    @property
    def models(self) -> tuple[str, ...]:
        return self._models

    def loss(self, output: np.ndarray, label: Any) -> float:
        """The configured loss of one row's ``output`` against the true ``label``.

        Raises ``InvalidInput`` when the label does not fit the output.
        """
        return self._loss(output, label)

    @abstractmethod
    def select(self, context: str, exclude: frozenset[str] = frozenset()) -> Selection:
        """The models to ask for a query in ``context``; ``Unavailable`` if none.

        Models in ``exclude`` (no ready replica) are not picked while another model
        is allowed; the probability reported is the one the draw really had.
        """

    def combine(
        self, context: str, selection: Selection, outputs: Mapping[str, np.ndarray]
    ) -> Combined:
        """The answer from the outputs that arrived (never empty). Single model: its own."""
        chosen = selection.models[0]
        if chosen not in outputs:
            raise ValueError(f"no output from the selected model '{chosen}'")
        return Combined(np.asarray(outputs[chosen]), (chosen,), 1.0, ())

    @abstractmethod
    def update(self, context: str, selection: Selection, losses: Mapping[str, float]) -> Deltas:
        """Learn from the losses (in [0, 1]) of the models whose output was scored;
        returns what the update added to the state, per model (for a shared backend)."""

    def load(self, context: str, totals: Totals) -> None:  # noqa: B027 (stateless: no-op)
        """Replace ``context``'s state with the one ``totals`` describe (a shared
        backend's snapshot). A model absent from ``totals`` starts fresh."""

    def contexts(self) -> list[str]:
        """The contexts this policy holds state for (the global ``""`` first)."""
        return [""]

    def prior(self, totals: Totals, predecessor: str, observations: float) -> dict[str, float]:
        """The totals a new arm starts from when it inherits ``predecessor``'s (a key of
        ``totals``, one context's sums by arm), bounded to ``observations``
        pseudo-observations; ``{}``: a fresh start (a stateless policy's only one)."""
        return {}

    def inherit(self, model: str, observations: float) -> list[str]:
        """``model``'s version changed: in every context, restart it from its own state
        bounded by ``prior``. Returns the contexts (a stateless policy has none)."""
        return []

    @abstractmethod
    def weights(self, context: str = "") -> dict[str, float]:
        """Current probability of each model being chosen (exp4: its ensemble weight)."""

    @abstractmethod
    def set_models(self, models: Sequence[str]) -> None:
        """Models came or went: new ones get a fair share, the others keep their state."""

    def _require_models(self) -> None:
        if not self._models:
            raise Unavailable("the app has no models to select from")

    def _known_losses(self, losses: Mapping[str, float]) -> dict[int, float]:
        """Losses by model index, for models still present; each checked to be in [0, 1]."""
        known = {}
        for model, loss in losses.items():
            if not 0.0 <= loss <= 1.0:  # also rejects NaN
                raise ValueError(f"loss for '{model}' must be in [0, 1], got {loss}")
            if model in self._index:
                known[self._index[model]] = float(loss)
        return known


class ContextualPolicy(Policy, Generic[S]):
    """A policy whose state (of type ``S``) is kept per context."""

    def __init__(
        self,
        models: Sequence[str],
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(models, params, seed)
        self._states: ContextStates[S] = ContextStates(
            self.params.max_contexts, lambda: self._new_state(len(self._models))
        )

    def select(self, context: str, exclude: frozenset[str] = frozenset()) -> Selection:
        self._require_models()
        state = self._states.get(context)
        if exclude:
            allowed = [i for i, m in enumerate(self._models) if m not in exclude]
            if allowed and len(allowed) < len(self._models):
                return self._select_among(state, allowed)
        return self._select(state)

    def update(self, context: str, selection: Selection, losses: Mapping[str, float]) -> Deltas:
        known = self._known_losses(losses)
        if not known:
            return {}
        state = self._states.get(context)
        deltas = self._deltas(state, selection, known)
        self._apply(state, deltas)
        return {self._models[i]: fields for i, fields in deltas.items()}

    def load(self, context: str, totals: Totals) -> None:
        by_index = [totals.get(model) for model in self._models]
        self._states.put(context, self._from_totals(by_index))

    def contexts(self) -> list[str]:
        return list(self._states)

    def totals(self, context: str) -> dict[str, dict[str, float]]:
        """``context``'s state as sums by model (what ``load`` takes back)."""
        state = self._states.peek(context)
        if state is None:
            return {}
        return dict(zip(self._models, self._totals(state), strict=True))

    def inherit(self, model: str, observations: float) -> list[str]:
        contexts = self.contexts()
        for context in contexts:
            totals = self.totals(context)
            totals[model] = self.prior(totals, model, observations)
            self.load(context, totals)
        return contexts

    def weights(self, context: str = "") -> dict[str, float]:
        if not self._models:
            return {}
        state = self._states.peek(context)
        if state is None:  # reading metrics must not create state
            state = self._new_state(len(self._models))
        return dict(zip(self._models, self._distribution(state).tolist(), strict=True))

    def set_models(self, models: Sequence[str]) -> None:
        new = unique_models(models)
        if new == self._models:
            return
        sources = [self._index.get(m) for m in new]
        self._models = new
        self._index = {m: i for i, m in enumerate(new)}
        self._states.transform(lambda state: self._resize(state, sources))

    def _pick(self, i: int, probability: float) -> Selection:
        model = self._models[i]
        return Selection((model,), {model: probability})

    @abstractmethod
    def _new_state(self, n_models: int) -> S:
        """A fresh context's state: every model on an equal footing."""

    @abstractmethod
    def _select(self, state: S) -> Selection: ...

    def _select_among(self, state: S, allowed: list[int]) -> Selection:
        """A draw restricted to the ``allowed`` model indices, by the policy's own
        distribution renormalised over them (a policy may do better)."""
        p = self._distribution(state)[allowed]
        total = float(p.sum())
        p = p / total if total > 0 else np.full(len(allowed), 1.0 / len(allowed))
        j = min(int(np.searchsorted(np.cumsum(p), self._rng.random(), side="right")), len(p) - 1)
        return self._pick(allowed[j], float(p[j]))

    @abstractmethod
    def _deltas(
        self, state: S, selection: Selection, losses: dict[int, float]
    ) -> dict[int, dict[str, float]]:
        """What learning from ``losses`` (by model index) adds, per model index."""

    @abstractmethod
    def _apply(self, state: S, deltas: dict[int, dict[str, float]]) -> None:
        """Add ``deltas`` to ``state`` in place."""

    @abstractmethod
    def _from_totals(self, totals: list[Mapping[str, float] | None]) -> S:
        """A context's state from the sums of its updates (``None``: a fresh model)."""

    @abstractmethod
    def _totals(self, state: S) -> list[dict[str, float]]:
        """Per model index, the sums ``_from_totals`` rebuilds ``state`` from."""

    @abstractmethod
    def _distribution(self, state: S) -> np.ndarray:
        """The probability of choosing each model (exp4: its weight), summing to 1."""

    @abstractmethod
    def _resize(self, state: S, sources: list[int | None]) -> S:
        """The state for the new model list; ``sources[i]`` is new model i's old index."""


def shrunk(fields: Mapping[str, float], weight: str, observations: float) -> dict[str, float]:
    """``fields`` scaled down so that ``fields[weight]`` (how many observations they
    sum) is at most ``observations``: the same mean, worth fewer observations."""
    count = fields.get(weight, 0.0)
    scale = min(1.0, observations / count) if count > 0 else 1.0
    return {name: value * scale for name, value in fields.items()}


def unique_models(models: Sequence[str]) -> tuple[str, ...]:
    if isinstance(models, str):
        raise TypeError("models must be a sequence of names, not one string")
    out = tuple(models)
    if len(set(out)) != len(out):
        raise ValueError(f"models listed twice: {list(out)}")
    return out
