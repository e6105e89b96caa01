"""The conditions a ModelDeployment shows at each stage of a rollout.

Each scenario checks (Ready, Progressing, Degraded) -- as "Status/Reason" -- and
that every condition carries the generation it was computed for. Ready answers
"does the model serve?", whatever version serves; Progressing "is a rollout under
way?"; Degraded "is something wrong that needs a person?".
"""

from __future__ import annotations

from clipper.common.rollout import VersionObservation
from clipper.testing.rollout import Controller, canary, candidate_ready, make_spec, stable_on

SERVING = "True/Serving"


def generations(c: Controller) -> set[int | None]:
    return {cond.observed_generation for cond in c.status.conditions}


def test_a_healthy_canary_is_ready_and_progressing() -> None:
    c = stable_on(Controller(spec=canary("v1")))
    c.apply(canary("v2"))
    c.step(1)
    assert c.triple() == (SERVING, "True/RolloutInProgress", "False/Healthy")
    assert c.message("Ready") == (
        "serving: v1 100% (2/2 replicas ready); rolling out v2 (0/2 replicas ready)"
    )
    c.ready("v2")
    c.step(1)
    assert c.traffic() == {"v1": 90, "v2": 10}
    assert c.triple() == (SERVING, "True/RolloutInProgress", "False/Healthy")
    assert c.message("Ready") == (
        "serving: v1 90% (2/2 replicas ready), v2 10% (2/2 replicas ready);"
        " rolling out v2 (canary step 1)"
    )
    assert generations(c) == {c.generation}


def test_a_promotion_ends_ready_and_no_longer_progressing() -> None:
    c = candidate_ready()
    for _ in range(3):
        c.step(61)
    assert c.traffic() == {"v2": 100}
    assert c.triple() == (SERVING, "False/RolloutComplete", "False/Healthy")
    assert c.message("Ready") == "serving: v2 100% (2/2 replicas ready)"
    assert generations(c) == {c.generation}


def test_a_deadline_rollback_is_ready_on_the_stable_version_and_degraded_with_the_cause() -> None:
    c = stable_on(Controller(spec=canary("v1", progressDeadlineSeconds=30)))
    c.apply(canary("v2", progressDeadlineSeconds=30))
    c.step(1)
    c.step(30)
    assert c.triple() == (SERVING, "False/RolledBack", "True/ProgressDeadlineExceeded")
    assert "v2 was not ready within 30s" in c.message("Degraded")
    assert c.message("Ready") == "serving: v1 100% (2/2 replicas ready)"
    assert generations(c) == {c.generation}


def test_a_crash_rollback_is_ready_on_the_stable_version_and_degraded_with_the_cause() -> None:
    c = candidate_ready()
    c.step(1)
    c.observed["v2"] = VersionObservation(failing=True, message="CrashLoopBackOff: exit 1")
    c.step(1)
    assert c.traffic() == {"v1": 100}
    assert c.triple() == (SERVING, "False/RolledBack", "True/VersionFailing")
    assert "CrashLoopBackOff: exit 1" in c.message("Degraded")


def test_a_paused_failure_without_auto_rollback_still_serves_and_says_it_is_paused() -> None:
    c = stable_on(Controller(spec=canary("v1", autoRollback=False)))
    c.apply(canary("v2", autoRollback=False))
    c.step(1)
    c.ready("v2")
    c.step(1)
    c.observed["v2"] = VersionObservation(failing=True, message="OOMKilled")
    c.step(1)
    assert c.traffic() == {"v1": 90, "v2": 10}
    assert c.triple() == (SERVING, "False/RolloutPaused", "True/VersionFailing")
    assert c.message("Ready") == (
        "serving: v1 90% (2/2 replicas ready), v2 10% (0/2 replicas ready);"
        " the rollout of v2 is paused: it failed"
    )


def test_a_first_deploy_that_fails_serves_nothing_and_is_degraded() -> None:
    c = Controller(spec=make_spec(progressDeadlineSeconds=30))
    c.step()
    assert c.triple() == ("False/NoVersionServing", "True/RolloutInProgress", "False/Healthy")
    c.step(30)
    assert c.triple() == (
        "False/NoVersionServing", "False/RolloutPaused", "True/ProgressDeadlineExceeded"
    )  # fmt: skip
    assert c.message("Ready") == "no version serves yet; the rollout of v1 is paused: it failed"
    c.ready("v1")
    c.step(1)
    assert c.triple() == (SERVING, "False/RolloutComplete", "False/Healthy")


def test_a_stable_version_with_no_ready_replica_is_not_ready() -> None:
    c = stable_on(Controller())
    c.ready("v1", 0)
    c.step(1)
    assert c.triple() == ("False/NoReadyReplicas", "False/RolloutComplete", "False/Healthy")
    assert c.condition("Available") == ("False", "NoReadyReplicas")


def test_conditions_follow_the_generation_even_when_nothing_flips() -> None:
    c = stable_on(Controller())
    c.apply(make_spec("v1", replicas=3))
    c.step(1)
    assert generations(c) == {c.generation}
    assert c.condition("Ready") == ("True", "Serving")
