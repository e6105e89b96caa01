"""The sequential test that decides a Shadow rollout: promote or reject the candidate.

In Shadow mode every labelled query was answered by both versions (the stable
one to the caller, the candidate in the shadow), so each label is a *paired*
comparison: scored by the app's loss, the candidate either did better than the
stable version (a win), worse (a loss) or the same (a tie). Ties say nothing
about which is better -- with a zero-one loss they are the queries both got
right or both got wrong -- and are ignored, as in McNemar's test.

Which test: Wald's sequential probability ratio test (SPRT) on the sign of the
paired loss difference. Among the untied pairs, let ``p`` be the chance that the
candidate wins. The test weighs

- H1, the candidate is better: ``p = 0.5 + delta``, against
- H0, the candidate is worse:  ``p = 0.5 - delta``,

and after each untied pair adds ``log((0.5+delta)/(0.5-delta))`` for a win and
subtracts it for a loss. It promotes once the sum reaches ``log((1-beta)/alpha)``
and rejects once it falls to ``log(beta/(1-alpha))``. Wald's bounds keep the
chance of promoting a candidate that is ``delta`` worse at most about ``alpha``
(a false promotion) and of rejecting one that is ``delta`` better at most about
``beta`` (a false rejection); between the two hypotheses the test may take
longer, which is why it is truncated: after ``max_samples`` labelled pairs
without a decision the candidate is rejected, because a new version has to earn
its place (no evidence it is better is a reason to keep what works).

Why a sign test and not a test on the loss values: it needs no model of the
loss's distribution, so it is exact for zero-one losses (classification) and
still valid for clipped regression losses, and its statistic is two counters
that a fleet of frontends can simply add up. The defaults (``alpha = beta =
0.05``, ``delta = 0.1``) decide after a net 8 wins or 8 losses among the untied
pairs (``ceil(log(19)/log(1.5))``), and never before ``min_samples`` labelled
pairs, so a handful of early labels cannot decide a rollout by luck.

Pure: counts in, a verdict out, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["promote", "reject", "continue"]


@dataclass(frozen=True)
class SequentialTest:
    """The settings of the test (``spec.rollout.shadow``)."""

    alpha: float = 0.05
    """The chance of promoting a candidate that is ``delta`` worse (a false promotion)."""
    beta: float = 0.05
    """The chance of rejecting a candidate that is ``delta`` better (a false rejection)."""
    delta: float = 0.1
    """How far from a coin flip the chance that the candidate wins an untied pair is
    under each hypothesis: the smallest difference the test is built to detect."""
    min_samples: int = 30
    """Labelled pairs (ties included) before any decision."""
    max_samples: int = 2000
    """Labelled pairs after which an undecided test rejects the candidate."""

    def __post_init__(self) -> None:
        if not (0 < self.alpha < 0.5 and 0 < self.beta < 0.5):
            raise ValueError("alpha and beta must be between 0 and 0.5")
        if not 0 < self.delta < 0.5:
            raise ValueError("delta must be between 0 and 0.5")
        if not 0 <= self.min_samples <= self.max_samples:
            raise ValueError("min_samples must be between 0 and max_samples")

    @property
    def step(self) -> float:
        """What one untied pair adds to (a win) or takes from (a loss) the log ratio."""
        return math.log((0.5 + self.delta) / (0.5 - self.delta))

    @property
    def upper(self) -> float:
        """The log ratio at which the candidate is promoted."""
        return math.log((1 - self.beta) / self.alpha)

    @property
    def lower(self) -> float:
        """The log ratio at which the candidate is rejected."""
        return math.log(self.beta / (1 - self.alpha))


@dataclass(frozen=True)
class Paired:
    """Labelled queries answered by both versions, and how they compared."""

    wins: int = 0
    """The candidate's loss was lower."""
    losses: int = 0
    """The stable version's loss was lower."""
    ties: int = 0
    """Equal losses (both right or both wrong, for a zero-one loss)."""
    stable_loss: float = 0.0
    """The sum of the stable version's losses over these queries."""
    candidate_loss: float = 0.0
    """The sum of the candidate's losses over these queries."""

    @property
    def samples(self) -> int:
        return self.wins + self.losses + self.ties

    def __add__(self, other: Paired) -> Paired:
        return Paired(
            self.wins + other.wins,
            self.losses + other.losses,
            self.ties + other.ties,
            self.stable_loss + other.stable_loss,
            self.candidate_loss + other.candidate_loss,
        )

    def __sub__(self, other: Paired) -> Paired:
        return Paired(
            self.wins - other.wins,
            self.losses - other.losses,
            self.ties - other.ties,
            self.stable_loss - other.stable_loss,
            self.candidate_loss - other.candidate_loss,
        )

    def mean_losses(self) -> tuple[float | None, float | None]:
        """Each version's mean loss (stable, candidate); None before any sample."""
        if self.samples == 0:
            return None, None
        return self.stable_loss / self.samples, self.candidate_loss / self.samples


@dataclass(frozen=True)
class Decision:
    """The test's verdict on ``paired``, with its evidence."""

    verdict: Verdict
    paired: Paired
    log_ratio: float
    why: str
    inconclusive: bool = False
    """A rejection for want of evidence (undecided at ``max_samples``, or at the
    comparison's time bound), not because the candidate proved worse."""

    def evidence(self, test: SequentialTest) -> str:
        """The numbers behind the verdict, for an Event."""
        p = self.paired
        stable, candidate = p.mean_losses()
        losses = "" if stable is None else f", mean loss {candidate:.3f} vs {stable:.3f} stable"
        return (
            f"n={p.samples} labelled pairs: candidate better {p.wins}, worse {p.losses},"
            f" tied {p.ties}{losses}; SPRT log-ratio {self.log_ratio:.2f}"
            f" (promote at {test.upper:.2f}, reject at {test.lower:.2f};"
            f" alpha={test.alpha}, beta={test.beta}, delta={test.delta})"
        )


def decide(test: SequentialTest, paired: Paired) -> Decision:
    """Promote, reject, or wait for more labels."""
    log_ratio = (paired.wins - paired.losses) * test.step
    if paired.samples < test.min_samples:
        why = f"{paired.samples} of at least {test.min_samples} labelled pairs"
        return Decision("continue", paired, log_ratio, why)
    if log_ratio >= test.upper:
        return Decision("promote", paired, log_ratio, "the candidate is better")
    if log_ratio <= test.lower:
        return Decision("reject", paired, log_ratio, "the candidate is worse")
    if paired.samples >= test.max_samples:
        why = f"no decision after {paired.samples} labelled pairs (maxSamples)"
        return Decision("reject", paired, log_ratio, why, inconclusive=True)
    return Decision("continue", paired, log_ratio, "not yet confident either way")
