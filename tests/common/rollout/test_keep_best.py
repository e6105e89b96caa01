"""keepBest: several versions run, the best on feedback serves, the rest scale to zero.

With ``keepBest: N`` (Shadow only) a promoted version's predecessor stays up as a
challenger, mirrored the queries and compared with the new stable version by the
same sequential test: better, it serves again (and the other becomes the
challenger); worse, it scales to zero and is retained as ``retainVersions`` says.
"""

from __future__ import annotations

from typing import Any

from clipper.common import api
from clipper.common.rollout.analysis import Fleet, FrontendReport
from clipper.common.rollout.sequential import Paired
from clipper.testing.rollout import Controller, make_spec, reasons, stable_on

BETTER = Paired(wins=9, ties=21)
WORSE = Paired(losses=9, ties=21)


def keep_best(version: str, **more: Any) -> api.ModelDeploymentSpec:
    return make_spec(version, strategy="Shadow", keepBest=2, shadow={"minSamples": 20}, **more)


def report(c: Controller, **pairs: Paired) -> None:
    """The frontends' paired counts, by "stable_candidate"."""
    c.fleet = Fleet(
        (
            FrontendReport(
                "frontend-0",
                {},
                None,
                {tuple(key.split("_")): p for key, p in pairs.items()},  # type: ignore[misc]
            ),
        )
    )


def v2_promoted() -> Controller:
    """v1 stable, v2 shadowed and promoted: v1 stays up as the challenger."""
    c = stable_on(Controller(spec=keep_best("v1")))
    c.apply(keep_best("v2"))
    c.step(1)
    c.ready("v2")
    c.step(1)
    report(c, v1_v2=BETTER)
    plan = c.step(5)
    assert reasons(plan) == ["ShadowPromoted", "Promoted"]
    assert "v1 stays up as a challenger" in plan.events[1].message
    return c


def test_the_predecessor_of_a_promoted_version_stays_up_as_a_challenger() -> None:
    c = v2_promoted()
    assert c.traffic() == {"v2": 100}
    assert [ch.version for ch in c.status.challengers] == ["v1"]
    assert c.phase("v1") == "Shadowing"
    assert c.status.version("v1").replicas == 2  # type: ignore[union-attr]
    assert c.last is not None
    assert c.last.action_for("v1").replicas == 2  # type: ignore[union-attr]


def test_a_challenger_that_proves_better_serves_again() -> None:
    c = v2_promoted()
    report(c, v2_v1=Paired())
    c.step(5)  # the comparison with the new stable version starts
    report(c, v2_v1=BETTER)
    plan = c.step(5)
    assert reasons(plan) == ["ShadowPromoted", "Promoted"]
    assert "v1 is better than v2" in plan.events[0].message
    assert c.traffic() == {"v1": 100}
    assert [ch.version for ch in c.status.challengers] == ["v2"]
    assert c.phase("v2") == "Shadowing"
    assert "RolloutStarted" not in reasons(c.step(5))  # spec.version v2 runs, compared


def test_a_challenger_that_proves_worse_scales_to_zero_and_is_retained() -> None:
    c = v2_promoted()
    report(c, v2_v1=Paired())
    c.step(5)
    report(c, v2_v1=WORSE)
    plan = c.step(5)
    assert reasons(plan) == ["ShadowRejected"]
    assert c.status.challengers == []
    assert c.phase("v1") == "Retained"
    assert c.last is not None
    assert c.last.action_for("v1") is not None
    assert c.traffic() == {"v2": 100}


def test_the_version_the_spec_names_rejected_as_a_challenger_is_not_restarted() -> None:
    c = v2_promoted()
    report(c, v2_v1=Paired())
    c.step(5)
    report(c, v2_v1=BETTER)
    c.step(5)  # v1 serves again; v2 (spec.version) challenges
    report(c, v1_v2=Paired())
    c.step(5)
    report(c, v1_v2=WORSE)
    assert reasons(c.step(5)) == ["ShadowRejected"]
    assert c.phase("v2") == "Failed"
    assert c.condition("Degraded") == ("True", "ShadowRejected")
    assert reasons(c.step(60)) == []


def test_past_keep_best_versions_the_oldest_challenger_is_retained() -> None:
    c = v2_promoted()
    c.apply(keep_best("v3"))
    c.step(1)
    c.ready("v3")
    c.step(1)
    assert c.status.shadow_version == "v3"
    assert [ch.version for ch in c.status.challengers] == ["v1"]  # both mirrored
    report(c, v2_v3=BETTER, v2_v1=Paired())
    plan = c.step(5)
    assert "ShadowPromoted" in reasons(plan)
    assert c.traffic() == {"v3": 100}
    assert [ch.version for ch in c.status.challengers] == ["v2"]
    assert c.phase("v1") == "Retained"


def test_turning_keep_best_off_drains_the_challengers() -> None:
    c = v2_promoted()
    c.apply(make_spec("v2", strategy="Shadow"))
    c.step(1)
    assert c.status.challengers == []
    assert c.phase("v1") == "Draining"


def test_a_challenger_with_no_verdict_by_its_time_bound_is_retained_as_inconclusive() -> None:
    c = v2_promoted()
    assert c.spec.rollout.shadow.max_duration_seconds == 3600
    report(c, v2_v1=Paired())
    c.step(5)  # the comparison with v2 starts
    report(c, v2_v1=Paired(wins=3, ties=3))
    assert reasons(c.step(3590)) == []
    plan = c.step(10)
    assert reasons(plan) == ["ShadowInconclusive"]
    assert "v1 did not prove better than v2" in plan.events[0].message
    assert "n=6 labelled pairs" in plan.events[0].message
    assert (c.status.challengers, c.phase("v1")) == ([], "Retained")
    assert c.traffic() == {"v2": 100}
