"""Analysis of canary steps: the counters' arithmetic, the gates, and the machine using them.

Pure: the frontends' reports are built by hand (``stats``), time is a parameter,
and the status round-trips through JSON between reconciles (``Controller``), so a
step's baseline is read back from the status like a restarted controller would.
"""

from __future__ import annotations

from clipper.common import api
from clipper.common.rollout.analysis import (
    LATENCY_BUCKETS_MS,
    Fleet,
    FrontendReport,
    VersionStats,
    judge,
    report_of,
)
from clipper.common.rollout.machine import ANALYSIS_FAILED
from clipper.testing.rollout import Controller, candidate_ready, reasons

SPEC = api.AnalysisSpec(min_samples=50, min_labels=20, warmup_seconds=0, failure_seconds=0)
"""Judged from each step's start, rolled back at the first failed judgement: the
warm-up and the failure window have tests of their own."""


def stats(
    requests: int,
    ms: float = 2.0,
    errors: int = 0,
    defaults: dict[str, int] | None = None,
    labels: int = 0,
    loss: float = 0.0,
) -> VersionStats:
    """``requests`` queries all answered in ``ms`` milliseconds."""
    latency = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    latency[next((i for i, b in enumerate(LATENCY_BUCKETS_MS) if ms <= b), -1)] = requests
    return VersionStats(
        requests,
        errors,
        defaults or {},
        tuple(latency),
        labels,
        loss * labels,
        loss * loss * labels,
    )


def fleet(*reports: tuple[str, dict[str, VersionStats]], slo_ms: float = 100) -> Fleet:
    return Fleet(tuple(FrontendReport(i, v, slo_ms) for i, v in reports))


# --- the counters --------------------------------------------------------------------


def test_p99_is_interpolated_within_its_bucket_and_the_overflow_says_at_least() -> None:
    fast = stats(99, ms=2).plus(stats(1, ms=400))
    p99 = fast.quantile_ms(0.99)
    assert p99 is not None
    assert 1 < p99 <= 2
    slow = stats(100, ms=140)
    p99 = slow.quantile_ms(0.99)
    assert p99 is not None
    assert 100 < p99 <= 150
    assert stats(10, ms=60_000).quantile_ms(0.99) == LATENCY_BUCKETS_MS[-1]
    assert VersionStats().quantile_ms(0.99) is None


def test_a_step_counts_what_every_frontend_counted_since_its_baseline() -> None:
    at_start = fleet(("a", {"v1": stats(100), "v2": stats(10)}), ("b", {"v1": stats(50)}))
    baseline = at_start.baseline(["v1", "v2"])
    later = fleet(
        ("a", {"v1": stats(160), "v2": stats(30)}),  # +60, +20
        ("b-restarted", {"v1": stats(5), "v2": stats(4)}),  # a new instance counts whole
    )
    deltas = later.since(baseline)
    assert deltas["v1"].requests == 65
    assert deltas["v2"].requests == 24
    assert sum(deltas["v2"].latency) == 24


def test_counters_that_went_down_count_from_zero() -> None:
    baseline = fleet(("a", {"v2": stats(100, errors=10)})).baseline(["v2"])
    deltas = fleet(("a", {"v2": stats(7, errors=1)})).since(baseline)
    assert (deltas["v2"].requests, deltas["v2"].errors) == (7, 1)


def test_a_frontend_document_is_read_for_one_model_across_apps() -> None:
    entry = {"requests": 3, "latency_buckets": [3], "labels": 1, "loss_sum": 0.5}
    doc = {
        "instance": "x",
        "versions": [
            {"app": "a", "model": "m", "version": "v1", "slo_ms": 200, **entry},
            {"app": "b", "model": "m", "version": "v1", "slo_ms": 50, **entry},
            {"app": "a", "model": "other", "version": "v1", "slo_ms": 10, **entry},
        ],
    }
    report = report_of(doc, "m")
    assert report.instance == "x"
    assert report.slo_ms == 50
    assert report.versions["v1"].requests == 6
    assert report.versions["v1"].mean_loss() == 0.5


# --- the gates -----------------------------------------------------------------------


def test_nothing_is_judged_before_min_samples() -> None:
    judgement = judge(SPEC, "v1", "v2", {"v1": stats(500), "v2": stats(49, ms=900)}, 100)
    assert judgement.verdict == "Waiting"
    assert judgement.message == "49 of 50 samples"


def test_every_gate_passes_for_a_version_like_the_stable_one() -> None:
    deltas = {"v1": stats(500, labels=40, loss=0.1), "v2": stats(60, labels=20, loss=0.12)}
    assert judge(SPEC, "v1", "v2", deltas, 100).verdict == "Passing"


def test_the_latency_gate_cites_n_both_p99s_and_the_threshold() -> None:
    judgement = judge(SPEC, "v1", "v2", {"v1": stats(500), "v2": stats(60, ms=140)}, 100)
    assert judgement.verdict == "Failed"
    (failure,) = judgement.failures
    assert failure.startswith("p99 latency: v2 1")
    assert "(n=60) vs v1 2.0 ms (n=500), threshold 100 ms (1 x the 100 ms SLO)" in failure


def test_the_latency_gate_blames_the_candidate_only_when_it_is_the_slower_one() -> None:
    # A node too busy for both versions to meet the SLO: the candidate is no slower.
    busy = {"v1": stats(500, ms=180), "v2": stats(60, ms=140)}
    assert judge(SPEC, "v1", "v2", busy, 100).verdict == "Passing"
    # Slower than the SLO and than the stable version on the same step: it fails.
    slower = {"v1": stats(500, ms=140), "v2": stats(60, ms=400)}
    judgement = judge(SPEC, "v1", "v2", slower, 100)
    assert judgement.verdict == "Failed"
    assert "threshold 100 ms (1 x the 100 ms SLO) and v1's p99" in judgement.failures[0]


def test_the_error_default_and_loss_gates_compare_with_the_stable_version() -> None:
    deltas = {
        "v1": stats(500, errors=5, defaults={"slo": 5}, labels=100, loss=0.1),
        "v2": stats(100, errors=10, defaults={"slo": 10}, labels=20, loss=0.5),
    }
    failures = judge(SPEC, "v1", "v2", deltas, 1000).failures
    assert failures == (
        "error rate: v2 0.100 (n=100) vs v1 0.010 (n=500), threshold +0.01",
        "default answers (slo): v2 0.100 (n=100) vs v1 0.010 (n=500), threshold +0.02",
        "loss: v2 0.500 (n=20 labels) vs v1 0.100 (n=100 labels), threshold +0.05",
    )


def test_loss_is_not_judged_before_min_labels() -> None:
    deltas = {"v1": stats(500, labels=100, loss=0.1), "v2": stats(100, labels=19, loss=0.9)}
    assert judge(SPEC, "v1", "v2", deltas, 100).verdict == "Passing"


# --- the machine ---------------------------------------------------------------------


def analysed_canary() -> Controller:
    """v2's canary at its first step, with frontend "a" counting from a baseline."""
    c = candidate_ready()
    c.spec.rollout.analysis = SPEC.model_copy()
    c.fleet = fleet(("a", {"v1": stats(1000)}))
    assert reasons(c.step(1)) == ["CanaryStep"]
    assert c.status.rollout.baseline is not None
    return c


def test_a_canary_slower_than_the_slo_is_rolled_back_by_the_latency_gate() -> None:
    c = analysed_canary()
    c.fleet = fleet(("a", {"v1": stats(1450), "v2": stats(40, ms=300)}))
    plan = c.step(5)
    assert reasons(plan) == []  # 40 of 50 samples: waiting
    assert plan.requeue_after == SPEC.interval_seconds
    assert c.status.analysis is not None
    assert c.status.analysis.verdict == "Waiting"
    c.fleet = fleet(("a", {"v1": stats(1900), "v2": stats(60, ms=300)}))
    plan = c.step(5)
    assert reasons(plan) == ["RolledBack"]
    (event,) = plan.events
    assert event.type == "Warning"
    assert "v2 failed its analysis at canary step 1: p99 latency: v2 " in event.message
    assert "(n=60) vs v1 2.0 ms (n=900), threshold 100 ms" in event.message
    assert c.traffic() == {"v1": 100}
    assert c.phase("v2") == "Failed"
    assert c.condition("Degraded") == ("True", ANALYSIS_FAILED)
    assert "threshold 100 ms" in c.message("Degraded")
    assert c.status.analysis is not None
    assert (c.status.analysis.verdict, c.status.analysis.samples) == ("Failed", 60)


def test_the_status_shows_each_versions_default_rates_that_the_gate_compared() -> None:
    c = analysed_canary()
    c.fleet = fleet(
        ("a", {"v1": stats(1400, defaults={"slo": 4}), "v2": stats(100, defaults={"slo": 9})})
    )
    assert reasons(c.step(5)) == ["RolledBack"]
    assert c.status.analysis is not None
    rates = {v.version: v.default_rates for v in c.status.analysis.versions}
    assert rates == {"v1": {"slo": 0.01}, "v2": {"slo": 0.09}}
    assert "default answers (slo): v2 0.090 (n=100) vs v1 0.010 (n=400)" in (
        c.status.analysis.message or ""
    )


def test_a_canary_as_good_as_the_stable_version_passes_each_step_then_is_promoted() -> None:
    c = analysed_canary()
    c.fleet = fleet(("a", {"v1": stats(1500, labels=30, loss=0.1), "v2": stats(60, labels=20)}))
    plan = c.step(60)
    assert [(e.reason, "passed its analysis" in e.message) for e in plan.events] == [
        ("CanaryStep", True)
    ]
    assert c.status.analysis is not None
    assert c.status.analysis.verdict == "Passed"
    assert c.status.analysis.loss_summary == "v1=0.100 v2=0.000"
    assert c.traffic() == {"v1": 50, "v2": 50}
    plan = c.step(60)  # no new queries in the second step: it was not judged
    assert reasons(plan) == ["Promoted"]
    assert "was not judged (0 of 50 samples)" in plan.events[0].message
    assert c.status.analysis.verdict == "NotJudged"


def test_a_controller_restarted_mid_analysis_judges_the_step_against_the_stored_baseline() -> None:
    c = candidate_ready()
    c.spec.rollout.analysis = SPEC.model_copy()
    # v2 failed every query under this frontend before the step (an earlier attempt):
    # the step is judged on what it did since the step's baseline only.
    c.fleet = fleet(("a", {"v1": stats(1000), "v2": stats(500, errors=500)}))
    assert reasons(c.step(1)) == ["CanaryStep"]
    restarted = Controller(  # a new controller: only the status carries over
        status=api.ModelDeploymentStatus.model_validate(c.status.to_dict()),
        observed=dict(c.observed),
        now=c.now,
        generation=c.generation,
        spec=c.spec,
    )
    restarted.fleet = fleet(("a", {"v1": stats(1500), "v2": stats(560, errors=500)}))
    assert reasons(restarted.step(5)) == []  # 60 clean queries since the baseline
    assert restarted.status.analysis is not None
    assert (restarted.status.analysis.verdict, restarted.status.analysis.samples) == ("Passing", 60)
    restarted.fleet = fleet(("a", {"v1": stats(2000), "v2": stats(620, errors=560)}))
    plan = restarted.step(5)
    assert reasons(plan) == ["RolledBack"]
    assert "error rate: v2 0.500 (n=120) vs v1 0.000 (n=1000)" in plan.events[0].message


def test_without_counters_steps_advance_on_their_pauses_and_say_so() -> None:
    c = candidate_ready()
    assert reasons(c.step(1)) == ["CanaryStep"]
    plan = c.step(60)
    assert "was not judged (no frontend's counters to read)" in plan.events[0].message
    assert c.status.analysis is not None
    assert c.status.analysis.verdict == "NotJudged"


def test_a_step_whose_frontends_were_unreachable_at_first_is_judged_once_they_answer() -> None:
    c = candidate_ready()
    c.spec.rollout.analysis = SPEC.model_copy()
    c.fleet = Fleet()  # the controller read, and reached no frontend
    plan = c.step(1)
    assert reasons(plan) == ["CanaryStep"]
    assert c.status.rollout.baseline is None
    assert plan.requeue_after == SPEC.interval_seconds  # it will read again soon
    c.fleet = fleet(("a", {"v1": stats(1000), "v2": stats(500, errors=500)}))
    assert reasons(c.step(5)) == []  # the baseline is taken now: nothing judged yet
    assert c.status.rollout.baseline is not None
    c.fleet = fleet(("a", {"v1": stats(1100), "v2": stats(560, errors=560)}))
    plan = c.step(5)
    assert reasons(plan) == ["RolledBack"]
    assert "error rate: v2 1.000 (n=60) vs v1 0.000 (n=100)" in plan.events[0].message


# --- the warm-up and the failure window ------------------------------------------------

PATIENT = api.AnalysisSpec(min_samples=50, min_labels=20)
"""The defaults' warm-up (5 s) and failure window (10 s), judged every 5 s."""


def patient_canary() -> Controller:
    c = candidate_ready()
    c.spec.rollout.analysis = PATIENT.model_copy()
    c.fleet = fleet(("a", {"v1": stats(1000)}))
    assert reasons(c.step(1)) == ["CanaryStep"]
    return c


def test_a_new_replicas_slow_first_seconds_are_not_judged() -> None:
    c = patient_canary()
    # Its first 4 s: 80 queries, all slower than the SLO (a cold channel, batches of one).
    c.fleet = fleet(("a", {"v1": stats(1400), "v2": stats(80, ms=300)}))
    plan = c.step(4)
    assert reasons(plan) == []
    assert c.status.analysis is not None
    assert c.status.analysis.verdict == "Waiting"
    assert "warming up" in (c.status.analysis.message or "")
    assert plan.requeue_after == 1.0  # it reads again when the warm-up ends
    c.step(1)  # the warm-up is over: the step counts from here
    assert c.status.rollout.baseline_at == c.now
    c.fleet = fleet(("a", {"v1": stats(2400), "v2": stats(80, ms=300).plus(stats(320, ms=5))}))
    assert reasons(c.step(5)) == []
    assert c.status.analysis.verdict == "Passing"
    plan = c.step(55)
    assert reasons(plan) == ["CanaryStep"]
    assert "step 1 passed its analysis: every gate passes on n=320" in plan.events[0].message


def test_a_gate_that_fails_once_is_a_reading_not_a_verdict() -> None:
    c = patient_canary()
    c.step(5)  # the warm-up ends: the baseline is taken
    c.fleet = fleet(("a", {"v1": stats(1500), "v2": stats(60, ms=300)}))
    assert reasons(c.step(5)) == []
    assert c.status.analysis is not None
    assert c.status.analysis.verdict == "Failing"
    assert "p99 latency: v2" in (c.status.analysis.message or "")
    failing_since = c.status.rollout.failing_since
    assert failing_since == c.now
    for _ in range(3):  # however often a controller calls, the same instant counts once
        assert reasons(c.step(0)) == []
    assert c.status.rollout.failing_since == failing_since
    # Then it serves well: the step's numbers pass and the failure is forgotten.
    c.fleet = fleet(("a", {"v1": stats(2000), "v2": stats(60, ms=300).plus(stats(6000, ms=5))}))
    assert reasons(c.step(5)) == []
    assert c.status.analysis.verdict == "Passing"
    assert c.status.rollout.failing_since is None
    assert reasons(c.step(50)) == ["CanaryStep"]


def test_a_gate_that_keeps_failing_rolls_back_after_the_failure_window() -> None:
    c = patient_canary()
    c.step(5)
    c.fleet = fleet(("a", {"v1": stats(1500), "v2": stats(60, errors=60)}))
    assert reasons(c.step(5)) == []
    assert c.status.analysis is not None
    assert c.status.analysis.verdict == "Failing"
    c.fleet = fleet(("a", {"v1": stats(2000), "v2": stats(120, errors=120)}))
    assert reasons(c.step(5)) == []  # 5 s of 10
    c.fleet = fleet(("a", {"v1": stats(2500), "v2": stats(180, errors=180)}))
    plan = c.step(5)
    assert reasons(plan) == ["RolledBack"]
    assert "error rate: v2 1.000 (n=180)" in plan.events[0].message
    assert c.status.analysis.verdict == "Failed"
    assert c.traffic() == {"v1": 100}


def test_a_step_whose_pause_ends_while_its_gates_fail_waits_for_their_verdict() -> None:
    c = patient_canary()
    c.step(5)
    c.fleet = fleet(("a", {"v1": stats(1500), "v2": stats(60, ms=300)}))
    plan = c.step(54)  # one second before the pause ends, a gate fails
    assert reasons(plan) == []
    assert c.status.analysis is not None
    assert c.status.analysis.verdict == "Failing"
    plan = c.step(1)  # the pause is over: no advance on a failing gate
    assert reasons(plan) == []
    assert c.traffic() == {"v1": 90, "v2": 10}
    assert plan.requeue_after == PATIENT.interval_seconds
    c.fleet = fleet(("a", {"v1": stats(2000), "v2": stats(60, ms=300).plus(stats(9000, ms=5))}))
    plan = c.step(5)  # it passes: the step advances
    assert reasons(plan) == ["CanaryStep"]
    assert c.traffic() == {"v1": 50, "v2": 50}
