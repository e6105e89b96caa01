"""Multiplicative weights kept as normalised log-probabilities.

Exp3 and Exp4 multiply weights by ``exp(-eta * loss)`` on every update; after a
million updates raw weights would underflow to 0 (or, with gains, overflow). So
the state is ``log p`` with ``logsumexp == 0`` after every update, and no entry
may fall more than ``LOG_FLOOR`` below the best one. The floor (a ratio of
e^-30, about 1e-13) has no effect on which model wins, keeps every number finite,
and bounds how long a model that was bad but has recovered needs to earn its
weight back -- serving traffic is not stationary.

Feedback is usually much rarer than queries (only some clients send labels),
so a context's distribution and its cumulative sums are cached until the next
update: a draw is then one random number and a ``searchsorted``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

LOG_FLOOR = 30.0

LOGW = "logw"
"""The field a shared backend keeps per model: the sum of the log-weight changes.
A backend floors it like ``normalise`` does (no model more than ``LOG_FLOOR``
below the best), so a model that recovers needs the same bounded time to earn
its weight back whichever frontend learns."""


@dataclass(slots=True)
class LogWeights:
    """One context's log-weights, with the distribution derived from them cached."""

    logp: np.ndarray
    cached: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def uniform(cls, n: int) -> LogWeights:
        return cls(uniform(n))

    def distribution(self, mix: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """``(p, cdf)``: the weights mixed with a ``mix`` share of uniform exploration.

        Cached until ``learn``; a policy always passes the same ``mix``.
        """
        if self.cached is None:
            p = (1.0 - mix) * probabilities(self.logp) + mix / self.logp.size
            self.cached = (p, np.cumsum(p))
        return self.cached

    def learn(self, decrements: dict[int, float]) -> None:
        """Lower each model's log-weight by its decrement, then renormalise."""
        for i, amount in decrements.items():
            self.logp[i] -= amount
        normalise(self.logp)
        self.cached = None

    def resize(self, sources: list[int | None]) -> LogWeights:
        return LogWeights(resize(self.logp, sources))

    @classmethod
    def from_totals(cls, totals: list[Mapping[str, float] | None]) -> LogWeights:
        """The weights whose log-weight sums are ``totals``; a model without one is new
        and gets a fair share, as ``resize`` gives it."""
        known = [(i, float(t[LOGW])) for i, t in enumerate(totals) if t and LOGW in t]
        sources: list[int | None] = [None] * len(totals)
        for j, (i, _) in enumerate(known):
            sources[i] = j
        old = np.array([value for _, value in known], dtype=np.float64)
        return cls(resize(old, sources))


def bounded_prior(
    totals: Mapping[str, Mapping[str, float]], predecessor: str, bound: float
) -> dict[str, float]:
    """A new arm's log-weight sum from its predecessor's, in the frame of the other
    arms' sums: a fair share (the mean of the others' weights, where a fresh arm
    starts) moved towards the predecessor's by at most ``bound`` nats. Exp3/exp4 keep
    no count of observations; ``bound`` = K x eta is what K labels of loss 1 seen
    with certainty move a log-weight; ``bound`` 0, or no predecessor's sum: the fair
    share itself, a fresh start in the others' frame (a shared backend's sums are
    absolute, so a fresh arm left at 0 would lead arms whose sums went down). ``{}``
    when there is no other arm to compare with."""
    own = (totals.get(predecessor) or {}).get(LOGW)
    others = [t[LOGW] for key, t in totals.items() if key != predecessor and t and LOGW in t]
    if not others:
        return {}
    values = np.array(others, dtype=np.float64)
    top = float(values.max())
    fair = top + float(np.log(np.exp(values - top).mean()))
    return {LOGW: fair + (0.0 if own is None else float(np.clip(own - fair, -bound, bound)))}


def uniform(n: int) -> np.ndarray:
    return np.full(n, -np.log(n) if n else 0.0)


def normalise(logp: np.ndarray) -> None:
    """In place: shift so the weights sum to 1, and floor the losers."""
    if logp.size == 0:
        return
    logp -= logp.max()  # first, so the floor is exact at any magnitude
    np.maximum(logp, -LOG_FLOOR, out=logp)
    logp -= np.log(np.exp(logp).sum())


def probabilities(logp: np.ndarray) -> np.ndarray:
    p = np.exp(logp - logp.max())
    p /= p.sum()
    return p


def resize(logp: np.ndarray, sources: list[int | None]) -> np.ndarray:
    """Weights for a new model list: kept models keep their relative weights, each
    new model gets a fair share 1/K of the new total, removed ones vanish."""
    out = uniform(len(sources))
    pairs = [(i, s) for i, s in enumerate(sources) if s is not None]
    if pairs:
        new, old = (list(t) for t in zip(*pairs, strict=True))
        kept = logp[old]  # fancy indexing copies
        normalise(kept)
        out[new] = kept + np.log(len(pairs) / len(sources))
    return out


def draw(rng: np.random.Generator, cdf: np.ndarray) -> int:
    """An index drawn by its cumulative probabilities (cheaper than ``rng.choice``)."""
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), cdf.size - 1)
