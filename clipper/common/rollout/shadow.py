"""The Shadow strategy's bookkeeping: frontend counts in, the test's evidence out.

The frontends count labelled queries answered by both versions cumulatively
from their own start, and each carries its process's instance id. The test
wants the counts since the shadow started, across controller restarts and
frontend restarts alike, so the status keeps the evidence so far and, per
frontend instance, the counts last read from it (``ShadowStatus.frontends``):
each reconcile adds what each frontend grew since. A frontend with an instance
id not seen before (a new one, or a restarted one: its counters start at zero)
counts whole; one missing from a read (a timeout, or no frontend answered at
all) keeps its entry and adds nothing, so when it answers again only its growth
counts. Why per instance and not the fleet's sum: a sum hides which frontend
restarted -- with several frontends the others' growth masks the drop, so a
restarted frontend's earlier evidence would be subtracted, and a frontend
missing from one read would look like a restart and the others' counts be added
twice.

What a frontend restart still loses: what it counted after the controller's
last read (at most ``POLL_S`` of labels), and the comparisons it could no longer
make -- the candidate's answers awaiting labels and the mirrors in flight live
in its memory, so labels for queries it mirrored before the restart are not
compared. Labels the test simply waits for again; none counts twice.

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

from collections.abc import Mapping
from datetime import datetime

from clipper.common.api import (
    AnalysisStatus,
    FrontendPaired,
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


KEEP_MISSING = 16
"""Frontends missing from a read whose last counts are kept, the newest read first:
a frontend that restarted never comes back under its old id, so this bounds them."""
MAX_FRONTENDS = 1000
"""Entries in ``ShadowStatus.frontends`` at most (the CRD's ``maxItems``)."""


def start(now: datetime, seen: Mapping[str, Paired] | None, stable: str | None) -> ShadowStatus:
    """A fresh comparison with ``stable``: what the frontends count from here on is
    evidence (``seen``: each frontend's counts now, by instance id; None: not read)."""
    state = ShadowStatus(started_at=now, stable=stable)
    _remember(state, seen or {}, now)
    return state


def seconds_left(spec: ShadowSpec, status: ShadowStatus, now: datetime) -> float:
    """Seconds until the comparison's time bound (<= 0: reached)."""
    started = status.started_at or now
    return spec.max_duration_seconds - (now - started).total_seconds()


def judge(
    test: SequentialTest,
    status: ShadowStatus,
    seen: Mapping[str, Paired] | None,
    now: datetime,
    spec: ShadowSpec,
) -> Decision:
    """Add what each frontend counted since the last read (``seen``: by instance id;
    None: not read, nothing new), then decide -- undecided at the time bound is an
    inconclusive rejection; the status is updated in place (evidence, last seen,
    the verdict and its numbers)."""
    evidence = _paired(status.evidence) + _grown(status, seen or {})
    _remember(status, seen or {}, now)
    decision = decide(test, evidence)
    if decision.verdict == "continue" and seconds_left(spec, status, now) <= 0:
        why = (
            f"inconclusive: no decision within maxDurationSeconds={spec.max_duration_seconds}"
            f" ({decision.why})"
        )
        decision = Decision("reject", evidence, decision.log_ratio, why, inconclusive=True)
    stable, candidate = evidence.mean_losses()
    status.evidence = _counts(evidence)
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


def _grown(status: ShadowStatus, seen: Mapping[str, Paired]) -> Paired:
    """What the frontends read now counted since they were last read."""
    if not status.frontends and _paired(status.last_seen).samples:
        return _grown_in_sum(status, seen)  # a status written before per-frontend counts
    before = {f.instance: _paired(f) for f in status.frontends}
    total = Paired()
    for instance, now in seen.items():
        last = before.get(instance)
        grown = now if last is None else now - last
        if min(grown.wins, grown.losses, grown.ties) < 0:  # not the same counters
            grown = now
        total = total + grown
    return total


def _grown_in_sum(status: ShadowStatus, seen: Mapping[str, Paired]) -> Paired:
    """The sum's rule, for a status that has only the sum: a count that went down
    means a frontend restarted, and the whole sum is new."""
    if not seen:
        return Paired()
    total = sum(seen.values(), Paired())
    grown = total - _paired(status.last_seen)
    return total if min(grown.wins, grown.losses, grown.ties) < 0 else grown


def _remember(status: ShadowStatus, seen: Mapping[str, Paired], now: datetime) -> None:
    """Each frontend's counts as read now; those missing from the read keep theirs."""
    missing = [f for f in status.frontends if f.instance not in seen]
    missing.sort(key=lambda f: f.seen_at or now, reverse=True)
    read = [
        FrontendPaired(instance=instance, seen_at=now, **_counts(counts).model_dump())
        for instance, counts in sorted(seen.items())
    ]
    status.frontends = [*read, *missing[:KEEP_MISSING]][:MAX_FRONTENDS]
    if seen:
        status.last_seen = _counts(sum(seen.values(), Paired()))


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
