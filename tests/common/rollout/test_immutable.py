"""Versions are immutable: a new template under an existing version name is refused.

Refused means: nothing changes in traffic or in the versions' actions, Degraded is
True with reason VersionImmutable naming what differs, and one Warning is posted;
restoring the template (or choosing a new name) clears it. Replicas are not part
of the template, and a retained version asked for with its own template is a
quick rollback.
"""

from __future__ import annotations

from clipper.common.rollout import EnsureVersion, Plan, ScaleVersion
from clipper.common.rollout.immutable import differences
from clipper.testing.rollout import (
    Controller,
    canary,
    candidate_ready,
    make_spec,
    reasons,
    stable_on,
)

OTHER = "models/other.joblib"


def warnings(plan: Plan) -> list[str]:
    return [e.reason for e in plan.events if e.type == "Warning"]


def assert_refused(c: Controller, plan: Plan, version: str, before: Plan) -> None:
    assert reasons(plan) == ["VersionImmutable"]
    assert warnings(plan) == ["VersionImmutable"]
    assert plan.actions == before.actions  # nothing changes in the running versions
    assert c.condition("Degraded") == ("True", "VersionImmutable")
    assert c.message("Degraded") == (
        f"{version} already exists with a different template"
        f" (modelUri: models/{version}.joblib -> {OTHER}); versions are immutable:"
        f" choose a new spec.version, or restore {version}'s template"
    )
    assert c.found("Degraded").observed_generation == c.generation


def retained_v1() -> Controller:
    c = candidate_ready()
    for _ in range(4):
        c.step(61)
    assert c.phase("v1") == "Retained"
    return c


def test_a_new_template_under_the_serving_version_is_refused_once_then_cleared() -> None:
    c = stable_on(Controller())
    before = c.step(1)
    c.apply(make_spec("v1", modelUri=OTHER))
    plan = c.step(1)
    assert_refused(c, plan, "v1", before)
    assert c.traffic() == {"v1": 100}
    assert c.status.version("v1").template.model_uri == "models/v1.joblib"  # type: ignore[union-attr]
    assert c.condition("Ready") == ("True", "Serving")
    assert reasons(c.step(30)) == []  # one Warning, not one per reconcile
    assert c.condition("Degraded") == ("True", "VersionImmutable")
    c.apply(make_spec("v1"))  # restored
    plan = c.step(1)
    assert reasons(plan) == []
    assert c.condition("Degraded") == ("False", "Healthy")


def test_a_new_template_under_a_retained_version_is_refused_not_rolled_out() -> None:
    c = retained_v1()
    before = c.step(1)
    c.apply(canary("v1", modelUri=OTHER))
    plan = c.step(1)
    assert_refused(c, plan, "v1", before)
    assert c.traffic() == {"v2": 100}
    assert c.phase("v1") == "Retained"
    assert plan.action_for("v1") == ScaleVersion("v1", 0)
    # A new name is a real rollout, canary included.
    c.apply(canary("v3", modelUri=OTHER))
    plan = c.step(1)
    assert reasons(plan) == ["RolloutStarted"]
    assert c.condition("Degraded") == ("False", "Healthy")
    c.ready("v3")
    assert reasons(c.step(1)) == ["CanaryStep"]


def test_a_retained_version_with_its_own_template_is_a_quick_rollback() -> None:
    c = retained_v1()
    c.apply(canary("v1", replicas=3))  # replicas are not part of the template
    plan = c.step(1)
    assert reasons(plan) == ["RolloutStarted"]
    c.ready("v1", 3)
    assert reasons(c.step(1)) == ["Promoted"]  # no canary steps: it has served before
    assert c.traffic() == {"v1": 100}


def test_a_new_template_under_the_candidate_is_refused_and_the_canary_goes_on() -> None:
    c = candidate_ready()
    before = c.step(1)
    assert c.traffic() == {"v1": 90, "v2": 10}
    c.apply(canary("v2", modelUri=OTHER))
    plan = c.step(1)
    assert_refused(c, plan, "v2", before)
    assert c.traffic() == {"v1": 90, "v2": 10}
    assert c.condition("Progressing") == ("True", "RolloutInProgress")
    assert reasons(c.step(60)) == ["CanaryStep"]  # the canary of the accepted template


def test_a_new_template_under_a_draining_version_is_refused() -> None:
    c = stable_on(Controller())
    c.apply(make_spec("v2"))
    c.step(1)
    c.ready("v2")
    c.step(1)
    assert c.phase("v1") == "Draining"
    c.apply(make_spec("v1", modelUri=OTHER))
    plan = c.step(1)
    assert warnings(plan) == ["VersionImmutable"]
    assert c.traffic() == {"v2": 100}
    assert plan.action_for("v1") == EnsureVersion("v1", make_spec("v1").template(), 2)


def test_scaling_a_version_is_not_a_template_change() -> None:
    c = stable_on(Controller())
    c.apply(make_spec("v1", replicas=4))
    plan = c.step(1)
    assert reasons(plan) == ["Scaled"]
    assert c.condition("Degraded") == ("False", "Healthy")


def test_a_failed_version_that_never_served_may_be_fixed_under_its_name() -> None:
    c = stable_on(Controller(spec=canary("v1", progressDeadlineSeconds=30)))
    c.apply(canary("v2", progressDeadlineSeconds=30))
    c.step(1)
    c.step(30)
    assert c.phase("v2") == "Failed"
    c.apply(canary("v2", progressDeadlineSeconds=30, modelUri=OTHER))
    plan = c.step(1)
    assert reasons(plan) == ["RolloutStarted"]
    c.ready("v2")
    assert reasons(c.step(1)) == ["CanaryStep"]  # a real rollout: the canary is not skipped


def test_differences_name_each_changed_field() -> None:
    old = make_spec("v1").template()
    new = make_spec("v1", modelUri=OTHER).model_copy(update={"threads": 4}).template()
    assert differences(old, new) == [
        f"modelUri: models/v1.joblib -> {OTHER}",
        "threads: unset -> 4",
    ]
    assert differences(old, old) == []
