"""The rollout state machine, as a pure function: every path, then a simulation.

No I/O and no clocks: time is a parameter, readiness is an observation. Each
scenario drives ``reconcile`` step by step, the way a controller does, with the
status round-tripped through JSON between steps (as it would be through the API
server), so "all state lives in status" is tested on every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pytest

from clipper.common import api
from clipper.common.rollout import (
    DeleteVersion,
    EnsureVersion,
    Plan,
    ScaleVersion,
    VersionObservation,
    reconcile,
)
from clipper.testing.rollout import (
    Controller,
    canary,
    candidate_ready,
    make_spec,
    reasons,
    stable_on,
)

# --- first deploy ---------------------------------------------------------------------


def test_first_deploy_becomes_stable_once_ready() -> None:
    c = Controller()
    plan = c.step()
    assert reasons(plan) == ["RolloutStarted"]
    assert plan.actions == (EnsureVersion("v1", c.spec.template(), 2),)
    assert c.traffic() == {}
    assert c.status.candidate_version == "v1"
    assert c.condition("Available") == ("False", "NoStableVersion")
    assert c.condition("Progressing") == ("True", "RolloutInProgress")
    assert plan.requeue_after == 600
    c.ready("v1", 1)  # one of two replicas: not yet
    assert reasons(c.step(5)) == []
    c.ready("v1")
    plan = c.step(5)
    assert reasons(plan) == ["Promoted"]
    assert c.traffic() == {"v1": 100}
    assert c.status.stable_version == "v1"
    assert c.status.candidate_version is None
    assert c.condition("Ready") == ("True", "Serving")
    assert c.condition("Available") == ("True", "StableServing")
    assert c.condition("Degraded") == ("False", "Healthy")
    assert c.status.traffic_summary == "v1=100"
    assert c.status.observed_generation == 1
    assert plan.requeue_after is None


def test_first_deploy_past_its_deadline_is_degraded_but_keeps_trying() -> None:
    c = Controller(spec=make_spec(progressDeadlineSeconds=30))
    c.step()
    plan = c.step(31)
    assert reasons(plan) == ["ProgressDeadlineExceeded"]
    assert plan.events[0].type == "Warning"
    assert c.phase("v1") == "Failed"
    assert plan.action_for("v1") == EnsureVersion("v1", c.spec.template(), 2)  # still running
    assert c.condition("Degraded") == ("True", "ProgressDeadlineExceeded")
    assert reasons(c.step(60)) == []  # no repeated events
    c.ready("v1")
    assert reasons(c.step(1)) == ["Promoted"]
    assert c.condition("Degraded") == ("False", "Healthy")
    assert c.condition("Ready") == ("True", "Serving")


# --- Rolling --------------------------------------------------------------------------


def test_rolling_shifts_all_traffic_once_ready_then_drains_and_retains() -> None:
    c = stable_on(Controller())
    c.apply(make_spec("v2"))
    plan = c.step(1)
    assert reasons(plan) == ["RolloutStarted"]
    assert c.traffic() == {"v1": 100}
    assert plan.action_for("v2") == EnsureVersion("v2", c.spec.template(), 2)
    assert c.condition("Ready") == ("True", "Serving")  # v1 serves while v2 starts
    assert c.condition("Progressing") == ("True", "RolloutInProgress")
    assert c.condition("Available") == ("True", "StableServing")
    c.ready("v2")
    plan = c.step(3)
    assert reasons(plan) == ["Promoted"]
    assert c.traffic() == {"v2": 100}
    assert c.phase("v1") == "Draining"
    assert isinstance(plan.action_for("v1"), EnsureVersion)  # still up while it drains
    assert plan.requeue_after == 10
    assert reasons(c.step(9)) == []
    plan = c.step(1)
    assert reasons(plan) == ["Retained"]
    assert c.phase("v1") == "Retained"
    assert plan.action_for("v1") == ScaleVersion("v1", 0)
    assert c.condition("Ready") == ("True", "Serving")


def test_a_ready_candidate_that_stops_being_ready_waits_for_its_deadline() -> None:
    c = stable_on(Controller(spec=make_spec(progressDeadlineSeconds=100)))
    c.apply(make_spec("v2", progressDeadlineSeconds=100))
    c.step()
    c.ready("v2", 1)
    plan = c.step(40)
    assert plan.requeue_after == 60  # the deadline counts from the rollout's start
    assert reasons(c.step(61)) == ["RolledBack"]


# --- Canary ---------------------------------------------------------------------------


def test_canary_steps_hold_their_pause_then_promote() -> None:
    c = stable_on(Controller(spec=canary("v1")))
    c.apply(canary("v2"))
    c.step(1)
    assert c.traffic() == {"v1": 100}  # not ready: no canary traffic yet
    c.ready("v2")
    plan = c.step(1)
    assert reasons(plan) == ["CanaryStep"]
    assert c.traffic() == {"v1": 90, "v2": 10}
    assert c.phase("v2") == "Progressing"
    assert c.status.rollout.step == 0
    assert plan.requeue_after == 60
    assert reasons(c.step(59)) == []
    assert c.last is not None
    assert c.last.requeue_after == 1
    assert reasons(c.step(1)) == ["CanaryStep"]
    assert c.traffic() == {"v1": 50, "v2": 50}
    assert c.condition("Progressing") == ("True", "RolloutInProgress")
    plan = c.step(60)
    assert reasons(plan) == ["Promoted"]
    assert c.traffic() == {"v2": 100}
    assert c.phase("v1") == "Draining"


def test_canary_pause_starts_over_when_the_candidate_stops_being_ready() -> None:
    c = candidate_ready()
    c.step(1)
    assert c.traffic() == {"v1": 90, "v2": 10}
    c.ready("v2", 1)
    c.step(50)
    assert c.status.rollout.waiting_since is not None
    assert c.traffic() == {"v1": 90, "v2": 10}  # weight kept; routing skips unready replicas
    c.ready("v2")
    assert reasons(c.step(20)) == []  # 70s into the step, but the pause restarted
    assert c.last is not None
    assert c.last.requeue_after == 60
    assert reasons(c.step(60)) == ["CanaryStep"]


def test_going_back_to_a_retained_version_scales_it_up_and_skips_the_steps() -> None:
    c = candidate_ready()
    for _ in range(4):
        c.step(61)
    assert c.traffic() == {"v2": 100}
    assert c.phase("v1") == "Retained"
    c.observed["v1"] = VersionObservation(ready_replicas=0)
    c.apply(canary("v1"))
    plan = c.step(1)
    assert plan.action_for("v1") == EnsureVersion("v1", c.spec.template(), 2)
    assert c.phase("v1") == "Pending"
    c.ready("v1")
    plan = c.step(1)
    assert reasons(plan) == ["Promoted"]  # no canary steps for a known-good version
    assert c.traffic() == {"v1": 100}
    assert c.phase("v2") == "Draining"


def test_reverting_to_the_stable_version_mid_canary_abandons_the_candidate() -> None:
    c = candidate_ready()
    c.step(1)
    assert c.traffic() == {"v1": 90, "v2": 10}
    c.apply(canary("v1"))
    plan = c.step(1)
    assert reasons(plan) == ["RolloutAbandoned"]
    assert c.traffic() == {"v1": 100}
    assert c.phase("v2") == "Draining"  # it had traffic: in-flight requests finish
    assert c.condition("Ready") == ("True", "Serving")
    c.step(10)
    assert c.phase("v2") == "Retained"


def test_a_new_version_mid_rollout_replaces_the_candidate() -> None:
    c = stable_on(Controller(spec=canary("v1")))
    c.apply(canary("v2"))
    c.step(1)  # v2 pending, no traffic
    c.apply(canary("v3"))
    plan = c.step(1)
    assert reasons(plan) == ["RolloutAbandoned", "RolloutStarted"]
    assert c.status.candidate_version == "v3"
    assert c.phase("v2") == "Retained"  # never had traffic: scaled down at once
    assert plan.action_for("v2") == ScaleVersion("v2", 0)
    assert c.traffic() == {"v1": 100}


# --- failures -------------------------------------------------------------------------


def test_deadline_rolls_back_and_is_not_retried_until_the_spec_changes() -> None:
    c = stable_on(Controller(spec=canary("v1", progressDeadlineSeconds=120)))
    c.apply(canary("v2", progressDeadlineSeconds=120))
    c.step(1)
    plan = c.step(120)
    assert reasons(plan) == ["RolledBack"]
    assert plan.events[0].type == "Warning"
    assert "v2 was not ready within 120s" in plan.events[0].message
    assert c.traffic() == {"v1": 100}
    assert c.status.candidate_version is None
    assert plan.action_for("v2") == ScaleVersion("v2", 0)
    assert c.phase("v2") == "Failed"
    assert c.condition("Degraded") == ("True", "ProgressDeadlineExceeded")
    assert c.condition("Progressing") == ("False", "RolledBack")
    assert c.condition("Available") == ("True", "StableServing")
    assert c.condition("Ready") == ("True", "Serving")  # on v1, the stable version
    # Same spec: nothing happens, however long we wait or whatever v2 does.
    c.ready("v2")
    plan = c.step(600)
    assert reasons(plan) == []
    assert c.traffic() == {"v1": 100}
    # The user changes the spec (e.g. a fixed model URI): the rollout is retried.
    c.apply(canary("v2", progressDeadlineSeconds=120, modelUri="models/v2-fixed.joblib"))
    plan = c.step(1)
    assert reasons(plan) == ["RolloutStarted"]
    assert c.condition("Degraded") == ("False", "Healthy")


def test_a_deadline_rollback_names_the_observed_cause() -> None:
    c = stable_on(Controller(spec=canary("v1", progressDeadlineSeconds=120)))
    c.apply(canary("v2", progressDeadlineSeconds=120))
    c.step(1)
    cause = "pod digits-v2-x: Unschedulable: 0/3 nodes are available"
    c.observed["v2"] = VersionObservation(ready_replicas=0, message=cause)
    plan = c.step(120)
    assert reasons(plan) == ["RolledBack"]
    expected = f"v2 was not ready within 120s (0/2 replicas ready): {cause}"
    assert plan.events[0].message.startswith(expected)
    assert c.status.version("v2").message == expected  # type: ignore[union-attr]
    degraded = next(x for x in c.status.conditions if x.type == "Degraded")
    assert degraded.message.startswith(expected)


def test_a_failing_candidate_rolls_back_at_once() -> None:
    c = stable_on(Controller())
    c.apply(make_spec("v2"))
    c.step(1)
    c.observed["v2"] = VersionObservation(failing=True, message="CrashLoopBackOff: exit 1")
    plan = c.step(1)
    assert reasons(plan) == ["RolledBack"]
    assert "CrashLoopBackOff: exit 1" in plan.events[0].message
    assert c.condition("Degraded") == ("True", "VersionFailing")
    assert c.traffic() == {"v1": 100}


def test_a_failure_first_seen_after_the_deadline_is_reported_as_the_deadline() -> None:
    # The operator sets the rollout's deadline on the Deployment too; on a busy
    # machine the Deployment controller's ProgressDeadlineExceeded can reach the
    # operator before its own timer fires. The reason must not depend on which
    # clock a reconcile sees first.
    c = stable_on(Controller(spec=make_spec(progressDeadlineSeconds=4)))
    c.apply(make_spec("v2", progressDeadlineSeconds=4))
    c.step(1)
    stuck = "Deployment ProgressDeadlineExceeded: ReplicaSet has timed out progressing"
    c.observed["v2"] = VersionObservation(failing=True, message=stuck)
    plan = c.step(4)
    assert reasons(plan) == ["RolledBack"]
    assert c.condition("Degraded") == ("True", "ProgressDeadlineExceeded")
    assert "v2 was not ready within 4s (0/2 replicas ready): " + stuck in plan.events[0].message


def test_without_auto_rollback_a_failed_rollout_pauses_as_it_is() -> None:
    c = stable_on(Controller(spec=canary("v1", autoRollback=False)))
    c.apply(canary("v2", autoRollback=False))
    c.step(1)  # the rollout starts
    c.ready("v2")
    c.step(1)
    assert c.traffic() == {"v1": 90, "v2": 10}
    c.observed["v2"] = VersionObservation(failing=True, message="OOMKilled")
    plan = c.step(1)
    assert reasons(plan) == ["RolloutPaused"]
    assert c.traffic() == {"v1": 90, "v2": 10}  # unchanged
    assert plan.action_for("v2") == EnsureVersion("v2", c.spec.template(), 2)  # kept up
    assert c.status.candidate_version == "v2"
    assert c.condition("Degraded") == ("True", "VersionFailing")
    assert c.condition("Progressing") == ("False", "RolloutPaused")
    c.ready("v2")  # even if it recovers, it stays paused for a person to decide
    assert reasons(c.step(600)) == []
    assert c.traffic() == {"v1": 90, "v2": 10}
    c.apply(canary("v1", autoRollback=False))  # the person rolls back by hand
    plan = c.step(1)
    assert c.traffic() == {"v1": 100}
    assert c.phase("v2") == "Draining"
    assert c.condition("Degraded") == ("False", "Healthy")


def test_a_failed_version_is_deleted_once_the_spec_moves_on() -> None:
    c = stable_on(Controller(spec=make_spec(progressDeadlineSeconds=5)))
    c.apply(make_spec("v2", progressDeadlineSeconds=5))
    c.step(1)
    c.step(5)
    assert c.phase("v2") == "Failed"
    c.apply(make_spec("v3", progressDeadlineSeconds=5))
    plan = c.step(1)
    assert c.phase("v2") is None
    assert DeleteVersion("v2") in plan.actions
    assert "VersionDeleted" in reasons(plan)


# --- retention and deletion -------------------------------------------------------------


@pytest.mark.parametrize("retain", [0, 1, 2])
def test_only_the_newest_retained_versions_are_kept(retain: int) -> None:
    c = stable_on(Controller(spec=make_spec(retainVersions=retain)))
    for n in range(2, 6):
        c.apply(make_spec(f"v{n}", retainVersions=retain))
        c.step(1)
        c.ready(f"v{n}")
        c.step(1)
        c.step(10)  # drained
        for gone in (
            [a.version for a in c.last.actions if isinstance(a, DeleteVersion)] if c.last else []
        ):
            c.observed.pop(gone, None)
    retained = [v.version for v in c.status.versions if v.phase == "Retained"]
    assert retained == [f"v{n}" for n in range(5 - retain, 5)]
    assert c.status.stable_version == "v5"


def test_unknown_versions_that_exist_are_deleted() -> None:
    c = stable_on(Controller())
    c.observed["v0"] = VersionObservation(ready_replicas=1)
    plan = c.step(1)
    assert DeleteVersion("v0") in plan.actions
    assert reasons(plan) == []


# --- in-place changes -------------------------------------------------------------------


def test_scaling_the_stable_version() -> None:
    c = stable_on(Controller())
    c.apply(make_spec("v1", replicas=5))
    plan = c.step(1)
    assert reasons(plan) == ["Scaled"]
    assert plan.action_for("v1") == EnsureVersion("v1", c.spec.template(), 5)
    assert c.condition("Ready") == ("True", "Serving")  # with the 2 replicas ready so far
    assert "v1 100% (2/5 replicas ready)" in c.message("Ready")
    c.ready("v1", 5)
    c.step(1)
    assert c.condition("Ready") == ("True", "Serving")


def test_scaled_to_zero() -> None:
    c = stable_on(Controller())
    c.apply(make_spec("v1", replicas=0))
    plan = c.step(1)
    assert plan.action_for("v1") == EnsureVersion("v1", c.spec.template(), 0)
    assert c.condition("Available") == ("False", "ScaledToZero")
    assert c.condition("Ready") == ("False", "ScaledToZero")


# --- purity and convergence -------------------------------------------------------------


def test_same_inputs_same_plan_and_applied_plans_converge() -> None:
    c = candidate_ready()
    c.step(1)
    again = reconcile(c.spec, c.status, c.observed, c.now, c.generation)
    twice = reconcile(c.spec, c.status, c.observed, c.now, c.generation)
    assert again == twice
    assert again.events == ()  # the previous plan was applied: nothing new
    assert again.status.to_dict() == c.status.to_dict()


def test_the_input_status_is_never_mutated() -> None:
    c = stable_on(Controller())
    before = c.status.to_dict()
    reconcile(make_spec("v2"), c.status, c.observed, c.now, 9)
    assert c.status.to_dict() == before


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        reconcile(make_spec(), api.ModelDeploymentStatus(), {}, datetime(2025, 1, 1))


# --- a simulation -----------------------------------------------------------------------


@dataclass
class Executor:
    """Applies plans like a controller would: versions start after ``startup`` seconds."""

    startup: float
    broken: set[str] = field(default_factory=set)
    up_since: dict[str, datetime] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=dict)

    def apply(self, plan: Plan, now: datetime) -> None:
        for act in plan.actions:
            if isinstance(act, EnsureVersion) and act.replicas > 0:
                self.up_since.setdefault(act.version, now)
                self.replicas[act.version] = act.replicas
            elif isinstance(act, ScaleVersion | DeleteVersion):
                self.up_since.pop(act.version, None)
                self.replicas.pop(act.version, None)

    def observe(self, now: datetime) -> dict[str, VersionObservation]:
        seen = {}
        for version, since in self.up_since.items():
            if version in self.broken:
                seen[version] = VersionObservation(failing=True, message="exit 1")
            elif (now - since).total_seconds() >= self.startup:
                seen[version] = VersionObservation(ready_replicas=self.replicas[version])
            else:
                seen[version] = VersionObservation()
        return seen


@pytest.mark.parametrize("strategy", ["Rolling", "Canary"])
@pytest.mark.parametrize("broken", [False, True])
def test_simulated_rollouts_never_route_to_a_stopped_version(strategy: str, broken: bool) -> None:
    """Step time by seconds through three version changes; check the invariants each step.

    - traffic sums to 100 once a version is stable;
    - every version with traffic is running (its processes were not stopped);
    - a version is stopped only after it has had no traffic for drainSeconds.
    """
    steps = [{"weight": 20, "pauseSeconds": 5}, {"weight": 60, "pauseSeconds": 5}]
    extra = {"strategy": strategy, "steps": steps} if strategy == "Canary" else {}
    executor = Executor(startup=3, broken={"v3"} if broken else set())
    c = Controller(spec=make_spec("v1", progressDeadlineSeconds=20, **extra))
    last_traffic: dict[str, datetime] = {}
    plan_for = {15: "v2", 60: "v3", 100: "v1"}
    for tick in range(160):
        if tick in plan_for:
            c.apply(make_spec(plan_for[tick], progressDeadlineSeconds=20, **extra))
        c.observed = executor.observe(c.now)
        plan = c.step(1 if tick else 0)
        executor.apply(plan, c.now)
        traffic = c.traffic()
        if c.status.stable_version:
            assert sum(traffic.values()) == 100
        for version in traffic:
            assert version in executor.up_since, (tick, version)
            last_traffic[version] = c.now
        for version, when in last_traffic.items():
            if version not in executor.up_since:
                assert (c.now - when).total_seconds() >= 10, (tick, version)
    assert c.status.stable_version == "v1"
    assert c.traffic() == {"v1": 100}
    degraded = c.condition("Degraded")
    assert degraded == ("False", "Healthy")
    assert [v.phase for v in c.status.versions if v.version == "v2"] == ["Retained"]
