"""Judging a canary on the traffic it served: per-version stats, fleet deltas, the gates.

The numbers come from the frontends, the only place that sees every answer: each
keeps cumulative counters per (app, model, version) -- queries, errors, default
answers by reason, a latency histogram, labels and loss -- and serves them as JSON
(``GET /v1/stats/versions``). A controller (the operator, local mode's runner)
reads every frontend of the app and hands the reports to the rollout machine as
a ``Fleet``. Everything here is pure, so the machine stays pure.

Why cumulative counters and baselines rather than windows or rates: a frontend
does not know when a step starts, several frontends serve one app, and a
controller may restart at any moment. So the machine stores every frontend's
counters when a step begins (``status.rollout.baseline``, keyed by the
frontend's instance id) and judges the step on the difference; a restarted
controller reads the same baseline from the status and carries on. A frontend
that restarted has a new instance id, so its counters count from zero (nothing
is negative); one that went away takes its share of the step with it; one
that a step's baseline never saw counts whole.

Why fixed latency buckets: deltas of a histogram are a histogram, so p99 over
exactly the step's queries is estimated from bucket differences (linear within
the bucket: the error is at most the bucket's width), with no quantile sketch to
merge across frontends. A query whose answer missed the app's deadline counts the
time it waited -- more than the SLO -- so a version too slow for the SLO shows a
p99 above it even though its callers got defaults on time.

The gates (``judge``), each the candidate against the stable version over the
step: error rate (errors / queries) higher by more than ``maxErrorRateIncrease``;
for each reason, the rate of default answers higher by more than
``maxDefaultRateIncrease``; p99 latency above ``maxLatencySloRatio`` x the
app's SLO (the strictest of the apps that serve the model) and above the stable
version's own p99 over the step -- a node too busy for either version to meet
the SLO is not the candidate's fault, and rolling back would not fix it; and
once both have
``minLabels`` labels, mean loss higher by more than ``maxLossIncrease``. Nothing is
judged before the candidate has ``minSamples`` queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from clipper.common.api import (
    AnalysisSpec,
    AnalysisStatus,
    FrontendCounters,
    VersionAnalysis,
    VersionCounters,
)
from clipper.common.rollout.sequential import Paired

LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 10000,
)  # fmt: skip
"""Upper bounds of the latency buckets, in milliseconds; one more bucket counts the rest."""
ERROR_REASONS = frozenset({"model_error", "retries_exhausted"})
"""Why a version's answer to a query counts as an error: the version failed it. A
query that timed out or was refused is judged by the latency and default gates."""


@dataclass(frozen=True)
class VersionStats:
    """One version's counters: cumulative on a frontend, or a difference of two."""

    requests: int = 0
    errors: int = 0
    defaults: Mapping[str, int] = field(default_factory=dict)
    latency: tuple[int, ...] = ()
    """Queries per bucket of ``LATENCY_BUCKETS_MS``, the overflow last."""
    labels: int = 0
    loss_sum: float = 0.0
    loss_squares: float = 0.0

    def plus(self, other: VersionStats) -> VersionStats:
        return self._combine(other, 1)

    def minus(self, other: VersionStats) -> VersionStats:
        return self._combine(other, -1)

    def _combine(self, other: VersionStats, sign: int) -> VersionStats:
        reasons = {*self.defaults, *other.defaults}
        size = max(len(self.latency), len(other.latency))
        mine, theirs = _padded(self.latency, size), _padded(other.latency, size)
        return VersionStats(
            requests=self.requests + sign * other.requests,
            errors=self.errors + sign * other.errors,
            defaults={
                r: self.defaults.get(r, 0) + sign * other.defaults.get(r, 0) for r in reasons
            },
            latency=tuple(a + sign * b for a, b in zip(mine, theirs, strict=True)),
            labels=self.labels + sign * other.labels,
            loss_sum=self.loss_sum + sign * other.loss_sum,
            loss_squares=self.loss_squares + sign * other.loss_squares,
        )

    def reset_since(self, before: VersionStats) -> bool:
        """Whether some counter went down since ``before``: they are not the same counters."""
        return self.requests < before.requests or self.labels < before.labels

    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def default_rate(self, reason: str) -> float:
        return self.defaults.get(reason, 0) / self.requests if self.requests else 0.0

    def mean_loss(self) -> float | None:
        return self.loss_sum / self.labels if self.labels else None

    def quantile_ms(self, q: float) -> float | None:
        """The ``q`` quantile of latency, interpolated within its bucket; the overflow
        bucket answers its lower bound (at least that)."""
        total = sum(self.latency)
        if total <= 0:
            return None
        rank, seen = q * total, 0
        for index, count in enumerate(self.latency):
            if count > 0 and seen + count >= rank:
                if index >= len(LATENCY_BUCKETS_MS):
                    return float(LATENCY_BUCKETS_MS[-1])
                low = LATENCY_BUCKETS_MS[index - 1] if index else 0.0
                high = LATENCY_BUCKETS_MS[index]
                return low + (high - low) * (rank - seen) / count
            seen += count
        return float(LATENCY_BUCKETS_MS[-1])

    def to_counters(self, version: str) -> VersionCounters:
        return VersionCounters(
            version=version,
            requests=self.requests,
            errors=self.errors,
            defaults=dict(self.defaults) or None,
            latency_buckets=list(self.latency) or None,
            labels=self.labels,
            loss_sum=self.loss_sum,
            loss_squares=self.loss_squares,
        )

    @classmethod
    def of_counters(cls, counters: VersionCounters) -> VersionStats:
        return cls(
            requests=counters.requests,
            errors=counters.errors,
            defaults=dict(counters.defaults or {}),
            latency=tuple(counters.latency_buckets or ()),
            labels=counters.labels,
            loss_sum=counters.loss_sum,
            loss_squares=counters.loss_squares,
        )

    @classmethod
    def of_json(cls, doc: Mapping[str, Any]) -> VersionStats:
        """From one entry of a frontend's ``/v1/stats/versions``."""
        return cls(
            requests=int(doc.get("requests", 0)),
            errors=int(doc.get("errors", 0)),
            defaults={str(k): int(v) for k, v in (doc.get("defaults") or {}).items()},
            latency=tuple(int(n) for n in doc.get("latency_buckets") or ()),
            labels=int(doc.get("labels", 0)),
            loss_sum=float(doc.get("loss_sum", 0.0)),
            loss_squares=float(doc.get("loss_squares", 0.0)),
        )


def _padded(counts: tuple[int, ...], size: int) -> tuple[int, ...]:
    return counts + (0,) * (size - len(counts))


@dataclass(frozen=True)
class FrontendReport:
    """What one frontend counted for one model: each version's counters, every app together."""

    instance: str
    versions: Mapping[str, VersionStats]
    slo_ms: float | None = None
    """The strictest latency SLO of the apps that serve the model on this frontend."""
    paired: Mapping[tuple[str, str], Paired] = field(default_factory=dict)
    """Shadow rollouts: labelled queries answered by both versions, by (stable,
    candidate), every app together (``clipper.frontend.shadow``)."""


def report_of(doc: Mapping[str, Any], model: str) -> FrontendReport:
    """The part of a frontend's ``/v1/stats/versions`` document about ``model``."""
    versions: dict[str, VersionStats] = {}
    slos: list[float] = []
    for entry in doc.get("versions", []):
        if entry.get("model") != model:
            continue
        version = str(entry["version"])
        stats = VersionStats.of_json(entry)
        versions[version] = versions[version].plus(stats) if version in versions else stats
        if entry.get("slo_ms") is not None:
            slos.append(float(entry["slo_ms"]))
    return FrontendReport(
        str(doc["instance"]), versions, min(slos) if slos else None, _paired_of(doc, model)
    )


def _paired_of(doc: Mapping[str, Any], model: str) -> dict[tuple[str, str], Paired]:
    paired: dict[tuple[str, str], Paired] = {}
    for entry in doc.get("shadows", []):
        if entry.get("model") != model:
            continue
        key = (str(entry["stable"]), str(entry["candidate"]))
        counts = Paired(
            int(entry.get("wins", 0)),
            int(entry.get("losses", 0)),
            int(entry.get("ties", 0)),
            float(entry.get("stable_loss", 0.0)),
            float(entry.get("candidate_loss", 0.0)),
        )
        paired[key] = paired[key] + counts if key in paired else counts
    return paired


@dataclass(frozen=True)
class Fleet:
    """Every frontend's report for one model, as one controller read them."""

    reports: tuple[FrontendReport, ...] = ()

    @property
    def slo_ms(self) -> float | None:
        slos = [r.slo_ms for r in self.reports if r.slo_ms is not None]
        return min(slos) if slos else None

    def paired_by_frontend(self, stable: str, candidate: str) -> dict[str, Paired]:
        """A Shadow rollout's cumulative paired counts by frontend instance id."""
        found: dict[str, Paired] = {}
        for report in self.reports:
            counts = report.paired.get((stable, candidate), Paired())
            found[report.instance] = found.get(report.instance, Paired()) + counts
        return found

    def baseline(self, versions: Iterable[str]) -> list[FrontendCounters]:
        """The counters of ``versions`` now, per frontend: a step's starting point."""
        wanted = [v for v in versions if v]
        return [
            FrontendCounters(
                instance=report.instance,
                versions=[
                    report.versions[v].to_counters(v) for v in wanted if v in report.versions
                ],
            )
            for report in self.reports
        ]

    def since(self, baseline: Sequence[FrontendCounters]) -> dict[str, VersionStats]:
        """Each version's counts since ``baseline``, summed over the frontends.

        A frontend absent from the baseline (new, or restarted: a new instance id)
        counts whole; one whose counters went down counts from zero.
        """
        before = {
            b.instance: {c.version: VersionStats.of_counters(c) for c in b.versions}
            for b in baseline
        }
        total: dict[str, VersionStats] = {}
        for report in self.reports:
            start = before.get(report.instance, {})
            for version, now in report.versions.items():
                base = start.get(version)
                delta = now if base is None or now.reset_since(base) else now.minus(base)
                total[version] = total[version].plus(delta) if version in total else delta
        return total


Verdict = Literal["Waiting", "Passing", "Failed"]


@dataclass(frozen=True)
class Judgement:
    """The gates' verdict on a step so far."""

    verdict: Verdict
    """Waiting: too few samples to judge; Passing: every gate passes; Failed: one does not."""
    samples: int
    failures: tuple[str, ...] = ()
    """One sentence per failed gate, with n, each version's value and the threshold."""
    note: str = ""
    """Why it waits, or what passed."""

    @property
    def message(self) -> str:
        return "; ".join(self.failures) if self.failures else self.note


def judge(
    spec: AnalysisSpec,
    stable: str,
    candidate: str,
    deltas: Mapping[str, VersionStats],
    slo_ms: float | None,
) -> Judgement:
    """The candidate against the stable version on their counts since the step began."""
    cand, base = deltas.get(candidate, VersionStats()), deltas.get(stable, VersionStats())
    n = cand.requests
    if n < spec.min_samples:
        return Judgement("Waiting", n, note=f"{n} of {spec.min_samples} samples")
    failures = [
        *_error_gate(spec, stable, candidate, base, cand),
        *_default_gate(spec, stable, candidate, base, cand),
        *_latency_gate(spec, stable, candidate, base, cand, slo_ms),
        *_loss_gate(spec, stable, candidate, base, cand),
    ]
    if failures:
        return Judgement("Failed", n, tuple(failures))
    return Judgement("Passing", n, note=f"every gate passes on n={n}")


def _error_gate(
    spec: AnalysisSpec, stable: str, candidate: str, base: VersionStats, cand: VersionStats
) -> list[str]:
    c, s = cand.error_rate() or 0.0, base.error_rate() or 0.0
    if c - s <= spec.max_error_rate_increase:
        return []
    return [
        f"error rate: {candidate} {c:.3f} (n={cand.requests}) vs {stable} {s:.3f}"
        f" (n={base.requests}), threshold +{spec.max_error_rate_increase:g}"
    ]


def _default_gate(
    spec: AnalysisSpec, stable: str, candidate: str, base: VersionStats, cand: VersionStats
) -> list[str]:
    failures = []
    for reason in sorted({*cand.defaults, *base.defaults}):
        c, s = cand.default_rate(reason), base.default_rate(reason)
        if c - s > spec.max_default_rate_increase:
            failures.append(
                f"default answers ({reason}): {candidate} {c:.3f} (n={cand.requests}) vs"
                f" {stable} {s:.3f} (n={base.requests}), threshold"
                f" +{spec.max_default_rate_increase:g}"
            )
    return failures


def _latency_gate(
    spec: AnalysisSpec,
    stable: str,
    candidate: str,
    base: VersionStats,
    cand: VersionStats,
    slo_ms: float | None,
) -> list[str]:
    p99 = cand.quantile_ms(0.99)
    if slo_ms is None or p99 is None:
        return []
    limit = spec.max_latency_slo_ratio * slo_ms
    theirs = base.quantile_ms(0.99)
    if p99 <= limit or (theirs is not None and p99 <= theirs):
        return []  # within the SLO, or no slower than the stable version on the same step
    other = f"{theirs:.1f} ms" if theirs is not None else "no samples"
    return [
        f"p99 latency: {candidate} {p99:.1f} ms (n={sum(cand.latency)}) vs {stable} {other}"
        f" (n={sum(base.latency)}), threshold {limit:g} ms"
        f" ({spec.max_latency_slo_ratio:g} x the {slo_ms:g} ms SLO) and {stable}'s p99"
    ]


def _loss_gate(
    spec: AnalysisSpec, stable: str, candidate: str, base: VersionStats, cand: VersionStats
) -> list[str]:
    if min(cand.labels, base.labels) < spec.min_labels:
        return []
    c, s = cand.mean_loss() or 0.0, base.mean_loss() or 0.0
    if c - s <= spec.max_loss_increase:
        return []
    return [
        f"loss: {candidate} {c:.3f} (n={cand.labels} labels) vs {stable} {s:.3f}"
        f" (n={base.labels} labels), threshold +{spec.max_loss_increase:g}"
    ]


def status_of(
    judgement: Judgement,
    candidate: str,
    step: int | None,
    deltas: Mapping[str, VersionStats],
    versions: Sequence[str],
    now: datetime,
) -> AnalysisStatus:
    """What ``status.analysis`` shows of a judgement (``clipper status``, ``kubectl get``)."""
    numbers = [_numbers(v, deltas.get(v, VersionStats())) for v in versions if v]
    losses = [f"{n.version}={n.loss:.3f}" for n in numbers if n.loss is not None]
    return AnalysisStatus(
        version=candidate,
        step=step,
        verdict=judgement.verdict,
        samples=judgement.samples,
        loss_summary=" ".join(losses) or None,
        message=judgement.message or None,
        versions=numbers,
        judged_at=now,
    )


def _numbers(version: str, stats: VersionStats) -> VersionAnalysis:
    p99 = stats.quantile_ms(0.99)
    rate = stats.error_rate()
    loss = stats.mean_loss()
    return VersionAnalysis(
        version=version,
        requests=stats.requests,
        error_rate=None if rate is None else round(rate, 4),
        default_rates={r: round(stats.default_rate(r), 4) for r in sorted(stats.defaults)} or None,
        p99_millis=None if p99 is None else round(p99, 1),
        labels=stats.labels,
        loss=None if loss is None else round(loss, 4),
    )
