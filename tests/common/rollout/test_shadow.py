"""The Shadow strategy in the rollout state machine: a ready candidate is mirrored,
never weighted; labels decide; frontend restarts and controller restarts resume."""

from __future__ import annotations

from clipper.common.rollout import shadow as shadow_rules
from clipper.common.rollout.analysis import Fleet, FrontendReport, report_of
from clipper.common.rollout.sequential import Paired
from clipper.testing.rollout import Controller, make_spec, reasons, stable_on


def shadow(version: str, max_duration_s: int = 3600, **more: object) -> object:
    test = {"minSamples": 20, "maxDurationSeconds": max_duration_s}
    return make_spec(version, strategy="Shadow", shadow=test, **more)


def shadowing(max_duration_s: int = 3600) -> Controller:
    """v1 stable, v2 applied under Shadow, ready, and getting mirrored queries."""
    c = stable_on(Controller(spec=shadow("v1", max_duration_s)))  # type: ignore[arg-type]
    c.apply(shadow("v2", max_duration_s))  # type: ignore[arg-type]
    c.step(1)
    c.ready("v2")
    plan = c.step(1)
    assert reasons(plan) == ["ShadowStarted"]
    return c


def labels(c: Controller, version: str, paired: Paired, *more: Paired) -> None:
    """What the app's frontends report for (v1, ``version``): one report per count."""
    c.fleet = Fleet(
        tuple(
            FrontendReport(f"frontend-{i}", {}, None, {("v1", version): p})
            for i, p in enumerate((paired, *more))
        )
    )


def test_a_ready_candidate_is_mirrored_and_answers_no_caller() -> None:
    c = shadowing()
    assert c.traffic() == {"v1": 100}
    assert c.status.shadow_version == "v2"
    assert c.phase("v2") == "Shadowing"
    assert c.condition("Progressing") == ("True", "RolloutInProgress")
    assert c.last is not None
    assert c.last.requeue_after is not None


def test_labels_that_favour_the_candidate_promote_it_with_the_evidence() -> None:
    c = shadowing()
    labels(c, "v2", Paired(wins=5, ties=10, stable_loss=5, candidate_loss=0))
    assert reasons(c.step(5)) == []
    assert c.status.rollout.shadow is not None
    assert c.status.rollout.shadow.samples == 15
    labels(c, "v2", Paired(wins=9, ties=12, stable_loss=9, candidate_loss=0))
    plan = c.step(5)
    assert reasons(plan) == ["ShadowPromoted", "Promoted"]
    assert "n=21" in plan.events[0].message
    analysis = c.status.analysis
    assert analysis is not None
    assert (analysis.version, analysis.verdict, analysis.samples) == ("v2", "Passed", 21)
    assert analysis.loss_summary == "v1=0.429 v2=0.000"
    assert "better 9" in plan.events[0].message
    assert c.traffic() == {"v2": 100}
    assert c.status.shadow_version is None
    assert c.phase("v1") == "Draining"


def test_a_worse_candidate_is_rejected_and_scaled_to_zero() -> None:
    c = shadowing()
    labels(c, "v2", Paired(losses=9, ties=30, stable_loss=0, candidate_loss=9))
    plan = c.step(5)
    assert reasons(plan) == ["ShadowRejected"]
    assert plan.events[0].type == "Warning"
    assert "worse 9" in plan.events[0].message
    assert c.traffic() == {"v1": 100}
    assert c.status.shadow_version is None
    assert c.status.candidate_version is None
    assert c.phase("v2") == "Failed"
    assert c.status.version("v2").replicas == 0  # type: ignore[union-attr]
    assert c.condition("Degraded") == ("True", "ShadowRejected")
    assert reasons(c.step(60)) == []  # not retried until the spec changes


def test_counts_from_before_the_shadow_started_are_not_evidence() -> None:
    c = stable_on(Controller(spec=shadow("v1")))  # type: ignore[arg-type]
    c.apply(shadow("v2"))  # type: ignore[arg-type]
    c.step(1)
    c.ready("v2")
    labels(c, "v2", Paired(wins=50, ties=50))  # e.g. an earlier shadow of the same pair
    c.step(1)
    assert c.phase("v2") == "Shadowing"
    assert reasons(c.step(5)) == []
    assert c.status.rollout.shadow is not None
    assert c.status.rollout.shadow.samples == 0


def test_a_frontend_restart_loses_no_evidence_already_counted() -> None:
    c = shadowing()
    labels(c, "v2", Paired(wins=4, ties=10))
    c.step(5)
    labels(c, "v2", Paired(wins=2, ties=3))  # the frontend restarted: counts from zero
    c.step(5)
    state = c.status.rollout.shadow
    assert state is not None
    assert state.samples == 19
    assert state.evidence.wins == 6


def test_a_restarted_controller_resumes_the_test_from_the_status() -> None:
    c = shadowing()
    labels(c, "v2", Paired(wins=7, ties=13))
    c.step(5)
    restarted = Controller(status=c.status, spec=c.spec, now=c.now, generation=c.generation)
    restarted.observed = dict(c.observed)
    restarted.fleet = c.fleet
    labels(restarted, "v2", Paired(wins=8, ties=13))
    assert reasons(restarted.step(5)) == ["ShadowPromoted", "Promoted"]


def test_the_counts_of_several_frontends_add_up() -> None:
    c = shadowing()
    labels(c, "v2", Paired(wins=4, ties=8), Paired(wins=4, ties=8))
    assert reasons(c.step(5)) == ["ShadowPromoted", "Promoted"]


def test_nothing_is_judged_or_lost_while_no_frontend_answers() -> None:
    c = shadowing()
    labels(c, "v2", Paired(wins=5, ties=10))
    c.step(5)
    c.fleet = None
    assert reasons(c.step(5)) == []
    labels(c, "v2", Paired(wins=6, ties=10))
    c.step(5)
    state = c.status.rollout.shadow
    assert state is not None
    assert state.samples == 16  # the 15 before, and one new: nothing counted twice


def test_a_version_that_was_stable_before_comes_back_without_a_shadow() -> None:
    c = shadowing()
    labels(c, "v2", Paired(wins=9, ties=12))
    c.step(5)
    c.apply(shadow("v1"))  # type: ignore[arg-type]
    c.step(1)
    c.ready("v1")
    plan = c.step(1)
    assert reasons(plan) == ["Promoted"]
    assert c.traffic() == {"v1": 100}


def test_a_frontends_document_gives_the_pairs_of_its_model() -> None:
    shadows = [
        {"model": "digits", "stable": "v1", "candidate": "v2", "wins": 3, "ties": 1},
        {"model": "digits", "stable": "v1", "candidate": "v2", "losses": 1},  # another app
        {"model": "other", "stable": "v1", "candidate": "v2", "wins": 9},
    ]
    report = report_of({"instance": "a", "versions": [], "shadows": shadows}, "digits")
    fleet = Fleet((report,))
    assert fleet.paired_by_frontend("v1", "v2") == {"a": Paired(wins=3, losses=1, ties=1)}
    assert fleet.paired_by_frontend("v1", "v3") == {"a": Paired()}


def test_a_shadow_without_enough_labels_is_rejected_as_inconclusive_at_its_time_bound() -> None:
    c = shadowing(max_duration_s=60)
    labels(c, "v2", Paired(wins=6, ties=2, stable_loss=6))  # ahead, but below minSamples
    assert reasons(c.step(30)) == []
    plan = c.step(30)
    assert reasons(plan) == ["ShadowInconclusive"]
    assert plan.events[0].type == "Warning"
    for part in ("inconclusive", "maxDurationSeconds=60", "n=8 labelled pairs", "better 6"):
        assert part in plan.events[0].message
    assert c.traffic() == {"v1": 100}  # never promoted without evidence
    assert (c.phase("v2"), c.status.version("v2").replicas) == ("Failed", 0)  # type: ignore[union-attr]
    assert c.status.shadow_version is None
    assert c.condition("Degraded") == ("True", "ShadowInconclusive")
    analysis = c.status.analysis
    assert analysis is not None
    assert (analysis.version, analysis.verdict, analysis.samples) == ("v2", "Failed", 8)
    assert "inconclusive" in (analysis.message or "")
    assert reasons(c.step(600)) == []  # not retried until the spec changes


def test_a_shadow_no_frontend_reports_on_is_still_bounded_in_time() -> None:
    c = shadowing(max_duration_s=12)
    c.fleet = None  # no label ever counted: no frontend answers, or none has labels
    assert reasons(c.step(5)) == []
    assert c.last is not None
    assert c.last.requeue_after == 5
    assert c.step(5).requeue_after == 2  # woken at the bound, not a poll later
    plan = c.step(2)
    assert reasons(plan) == ["ShadowInconclusive"]
    assert "n=0 labelled pairs" in plan.events[0].message
    assert c.status.analysis is not None
    assert c.status.analysis.samples == 0


def test_a_shadow_that_decides_before_its_time_bound_is_not_affected() -> None:
    c = shadowing(max_duration_s=60)
    labels(c, "v2", Paired(losses=9, ties=12, candidate_loss=9))
    assert reasons(c.step(59)) == ["ShadowRejected"]


def frontends(c: Controller, **counts: Paired) -> None:
    """What each frontend, by instance id, reports for (v1, v2)."""
    c.fleet = Fleet(
        tuple(FrontendReport(name, {}, None, {("v1", "v2"): p}) for name, p in counts.items())
    )


def evidence(c: Controller) -> Paired:
    state = c.status.rollout.shadow
    assert state is not None
    e = state.evidence
    return Paired(e.wins, e.losses, e.ties, e.stable_loss, e.candidate_loss)


def test_a_restarted_frontend_among_several_neither_erases_nor_repeats_evidence() -> None:
    c = shadowing()
    frontends(c, a=Paired(wins=2, losses=2, ties=6), b=Paired(wins=1, losses=1, ties=5))
    c.step(5)
    assert evidence(c) == Paired(wins=3, losses=3, ties=11)
    # b restarted (a new instance id, counting from zero); a counted 2 more.
    frontends(c, a=Paired(wins=3, losses=2, ties=7), b2=Paired(losses=1, ties=1))
    c.step(5)
    assert evidence(c) == Paired(wins=4, losses=4, ties=13)


def test_a_frontend_missing_from_one_read_is_counted_once_when_it_is_back() -> None:
    c = shadowing()
    frontends(c, a=Paired(wins=2, ties=4), b=Paired(wins=3, ties=5))
    c.step(5)
    frontends(c, a=Paired(wins=3, ties=6))  # b did not answer this read
    c.step(5)
    assert evidence(c) == Paired(wins=6, ties=11)
    frontends(c, a=Paired(wins=3, ties=6), b=Paired(wins=4, ties=6))
    c.step(5)
    assert evidence(c) == Paired(wins=7, ties=12)


def test_a_read_that_reached_no_frontend_changes_nothing() -> None:
    c = shadowing()
    frontends(c, a=Paired(wins=2, ties=4))
    c.step(5)
    c.fleet = Fleet()  # the controller read, and no frontend answered
    c.step(5)
    frontends(c, a=Paired(wins=2, ties=5))
    c.step(5)
    assert evidence(c) == Paired(wins=2, ties=5)


def test_a_status_with_only_the_fleets_sum_carries_on_without_counting_twice() -> None:
    """A comparison an earlier controller kept as the fleet's sum alone goes on."""
    c = shadowing()
    frontends(c, a=Paired(wins=2, ties=4))
    c.step(5)
    state = c.status.rollout.shadow
    assert state is not None
    state.frontends = []  # what the earlier controller wrote: the sum in lastSeen
    frontends(c, a=Paired(wins=3, ties=5))
    c.step(5)
    assert evidence(c) == Paired(wins=3, ties=5)
    frontends(c, a=Paired(wins=4, ties=5))
    c.step(5)
    assert evidence(c) == Paired(wins=4, ties=5)


def test_the_frontends_remembered_are_bounded_however_often_they_restart() -> None:
    c = shadowing()
    for restart in range(40):
        frontends(c, **{f"a{restart}": Paired(ties=1)})
        c.step(5)
    state = c.status.rollout.shadow
    assert state is not None
    assert len(state.frontends) == 1 + shadow_rules.KEEP_MISSING
    assert state.frontends[0].instance == "a39"
    assert evidence(c) == Paired(ties=40)
