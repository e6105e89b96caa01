"""The Shadow strategy's bookkeeping: frontend counts in, the test's evidence out.

The frontends count labelled queries answered by both versions cumulatively
from their own start (``VersionObservation.paired``, summed over the fleet). The
test wants the counts since the shadow started, across controller restarts and
frontend restarts alike, so the status keeps both the evidence so far and the
counts last seen: each reconcile adds what grew since; a count that went *down*
means a frontend restarted from zero, and then everything it reports now is new
(the same rule Prometheus's ``increase`` applies to a counter reset). A fleet's
sum hides which frontend restarted, so a restart there loses at most what that
frontend counted since the last reconcile -- labels the test simply waits for
again; it never counts a label twice.

A comparison is bounded in time as well as in labels (``maxDurationSeconds``
from its start): a candidate whose queries get no labels -- a client that never
sends feedback -- would otherwise hold its replicas, and the rollout, forever.
At the bound an undecided test rejects it as *inconclusive*
(``ShadowInconclusive``), the same as an undecided test at ``maxSamples``: a new
version has to show it is better, so no evidence is never a promotion. Not
``progressDeadlineSeconds``: that bounds how long a version takes to become
ready (minutes); this bounds how long its labels take to arrive, which depends
on the traffic and the client's feedback delay (hours, maybe).
"""

from __future__ import annotations

from datetime import datetime

from clipper.common.api import (
    AnalysisStatus,
    PairedCounts,
    ShadowSpec,
    ShadowStatus,
    VersionAnalysis,
)
from clipper.common.rollout.sequential import Decision, Paired, SequentialTest, decide

POLL_S = 5.0
"""How often a Shadow rollout is reconciled again to read new labels."""
REJECTED = "ShadowRejected"
"""The Failed reason (and the Warning event) of a candidate the test found worse."""
INCONCLUSIVE = "ShadowInconclusive"
"""The Failed reason (and the Warning event) of a candidate rejected undecided: at
``maxSamples`` labelled pairs or ``maxDurationSeconds``, without evidence either way."""


def sequential_test(spec: ShadowSpec) -> SequentialTest:
    return SequentialTest(
        alpha=spec.alpha,
        beta=spec.beta,
        delta=spec.delta,
        min_samples=spec.min_samples,
        max_samples=spec.max_samples,
    )


def describe(test: SequentialTest) -> str:
    return (
        f"Wald's SPRT on the sign of the paired loss (alpha={test.alpha}, beta={test.beta},"
        f" delta={test.delta}, at least {test.min_samples} and at most"
        f" {test.max_samples} labelled queries)"
    )


def start(now: datetime, seen: Paired, stable: str | None) -> ShadowStatus:
    """A fresh comparison with ``stable``: what the frontends count from here on is
    evidence."""
    return ShadowStatus(started_at=now, stable=stable, last_seen=_counts(seen))


def seconds_left(spec: ShadowSpec, status: ShadowStatus, now: datetime) -> float:
    """Seconds until the comparison's time bound (<= 0: reached)."""
    started = status.started_at or now
    return spec.max_duration_seconds - (now - started).total_seconds()


def judge(
    test: SequentialTest,
    status: ShadowStatus,
    seen: Paired | None,
    now: datetime,
    spec: ShadowSpec,
) -> Decision:
    """Add what the frontends counted since the last reconcile (``seen`` None: not
    read, nothing new), then decide -- undecided at the time bound is an
    inconclusive rejection; the status is updated in place (evidence, last seen,
    the verdict and its numbers)."""
    last, evidence = _paired(status.last_seen), _paired(status.evidence)
    seen = last if seen is None else seen
    grown = seen - last
    reset = min(grown.wins, grown.losses, grown.ties) < 0
    evidence = evidence + (seen if reset else grown)
    decision = decide(test, evidence)
    if decision.verdict == "continue" and seconds_left(spec, status, now) <= 0:
        why = (
            f"inconclusive: no decision within maxDurationSeconds={spec.max_duration_seconds}"
            f" ({decision.why})"
        )
        decision = Decision("reject", evidence, decision.log_ratio, why, inconclusive=True)
    stable, candidate = evidence.mean_losses()
    status.evidence, status.last_seen = _counts(evidence), _counts(seen)
    status.samples, status.log_ratio = evidence.samples, round(decision.log_ratio, 4)
    status.stable_loss, status.candidate_loss = stable, candidate
    status.verdict = decision.verdict
    return decision


VERDICTS = {"continue": "Waiting", "promote": "Passed", "reject": "Failed"}
"""The test's verdicts as ``status.analysis`` words (what ``kubectl get mdep`` and
``clipper status`` show for a canary's analysis too)."""


def analysis_of(
    decision: Decision, test: SequentialTest, stable: str, candidate: str, now: datetime
) -> AnalysisStatus:
    """What ``status.analysis`` shows of a Shadow comparison: the labelled pairs, each
    version's mean loss over them, the verdict and its evidence."""
    paired = decision.paired
    losses = paired.mean_losses()
    numbers = [
        VersionAnalysis(
            version=version, labels=paired.samples, loss=None if loss is None else round(loss, 4)
        )
        for version, loss in zip((stable, candidate), losses, strict=True)
    ]
    summary = " ".join(f"{n.version}={n.loss:.3f}" for n in numbers if n.loss is not None)
    return AnalysisStatus(
        version=candidate,
        verdict=VERDICTS[decision.verdict],  # type: ignore[arg-type]
        samples=paired.samples,
        loss_summary=summary or None,
        message=f"shadow: {decision.why}; {decision.evidence(test)}",
        versions=numbers,
        judged_at=now,
    )


def _paired(counts: PairedCounts) -> Paired:
    return Paired(
        counts.wins, counts.losses, counts.ties, counts.stable_loss, counts.candidate_loss
    )


def _counts(paired: Paired) -> PairedCounts:
    return PairedCounts(
        wins=paired.wins,
        losses=paired.losses,
        ties=paired.ties,
        stable_loss=paired.stable_loss,
        candidate_loss=paired.candidate_loss,
    )
