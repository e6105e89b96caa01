"""Events for an app's condition changes."""

from __future__ import annotations

from datetime import UTC, datetime

from clipper.common import api
from clipper.operator.reconcile.apps import condition_events

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def conditions(**pairs: tuple[str, str]) -> list[api.Condition]:
    return [
        api.Condition(type=kind, status=status, reason=reason, message=f"{kind} {reason}",  # type: ignore[arg-type]
                      last_transition_time=NOW)
        for kind, (status, reason) in pairs.items()
    ]  # fmt: skip


def summary(events: list) -> list[tuple[str, str]]:
    return [(e.type, e.reason) for e in events]


def test_a_new_app_that_is_not_ready_yet_is_no_news() -> None:
    new = conditions(Ready=("False", "FrontendNotReady"), Degraded=("False", "Healthy"))
    assert condition_events([], new) == []


def test_a_new_app_with_a_problem_says_so() -> None:
    new = conditions(Ready=("False", "ModelNameClash"), Degraded=("True", "ModelNameClash"))
    assert summary(condition_events([], new)) == [("Warning", "ModelNameClash")]


def test_becoming_ready_and_recovering_is_one_normal_event() -> None:
    old = conditions(Ready=("False", "ModelsNotServing"), Degraded=("True", "ModelNotServing"))
    new = conditions(Ready=("True", "Serving"), Degraded=("False", "Healthy"))
    assert summary(condition_events(old, new)) == [("Normal", "Ready")]


def test_recovering_while_not_ready_yet_is_news_too() -> None:
    old = conditions(Ready=("False", "ModelsNotServing"), Degraded=("True", "ModelNotServing"))
    new = conditions(Ready=("False", "FrontendNotReady"), Degraded=("False", "Healthy"))
    assert summary(condition_events(old, new)) == [("Warning", "FrontendNotReady")]
    new = conditions(Ready=("False", "ModelsNotServing"), Degraded=("False", "Healthy"))
    assert summary(condition_events(old, new)) == [("Normal", "Recovered")]


def test_a_problem_names_its_cause_once() -> None:
    """A model back but not serving yet: Ready says how many serve, Degraded which does
    not; the one Warning is Degraded's."""
    old = conditions(Ready=("False", "ModelNotFound"), Degraded=("True", "ModelNotFound"))
    new = conditions(Ready=("False", "ModelsNotServing"), Degraded=("True", "ModelNotServing"))
    assert summary(condition_events(old, new)) == [("Warning", "ModelNotServing")]


def test_losing_readiness_warns_with_the_reason_once() -> None:
    old = conditions(Ready=("True", "Serving"), Degraded=("False", "Healthy"))
    new = conditions(Ready=("False", "FrontendNotReady"), Degraded=("False", "Healthy"))
    assert summary(condition_events(old, new)) == [("Warning", "FrontendNotReady")]
    assert condition_events(new, new) == []


def test_a_problem_that_turns_both_conditions_is_one_warning() -> None:
    """Deleting a model a Ready app uses: Ready False and Degraded True, with the same
    reason and message, are one transition and one Event."""
    old = conditions(Ready=("True", "Serving"), Degraded=("False", "Healthy"))
    new = [
        api.Condition(type=kind, status=status, reason="ModelNotFound",  # type: ignore[arg-type]
                      message="no ModelDeployment named digits", last_transition_time=NOW)
        for kind, status in (("Ready", "False"), ("Degraded", "True"))
    ]  # fmt: skip
    found = condition_events(old, new)
    assert [(e.type, e.reason, e.message) for e in found] == [
        ("Warning", "ModelNotFound", "no ModelDeployment named digits")
    ]


def test_losing_the_state_backend_warns_and_reaching_it_again_is_good_news() -> None:
    old = conditions(Ready=("True", "Serving"), StateBackendReachable=("True", "Reachable"))
    lost = conditions(
        Ready=("True", "Serving"), StateBackendReachable=("False", "StateBackendUnreachable")
    )
    assert summary(condition_events(old, lost)) == [("Warning", "StateBackendUnreachable")]
    assert summary(condition_events(lost, old)) == [("Normal", "StateBackendReachable")]


def test_a_state_backend_first_known_is_news_only_when_unreachable() -> None:
    unknown = conditions(Ready=("True", "Serving"), StateBackendReachable=("Unknown", "NoReports"))
    reached = conditions(Ready=("True", "Serving"), StateBackendReachable=("True", "Reachable"))
    lost = conditions(
        Ready=("True", "Serving"), StateBackendReachable=("False", "StateBackendUnreachable")
    )
    assert condition_events([], unknown) == []
    assert condition_events(unknown, reached) == []
    assert condition_events(reached, unknown) == []
    assert summary(condition_events(unknown, lost)) == [("Warning", "StateBackendUnreachable")]
