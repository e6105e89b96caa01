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


def test_becoming_ready_and_recovering_are_normal_events() -> None:
    old = conditions(Ready=("False", "ModelsNotServing"), Degraded=("True", "ModelNotServing"))
    new = conditions(Ready=("True", "Serving"), Degraded=("False", "Healthy"))
    assert summary(condition_events(old, new)) == [("Normal", "Ready"), ("Normal", "Recovered")]


def test_losing_readiness_warns_with_the_reason_once() -> None:
    old = conditions(Ready=("True", "Serving"), Degraded=("False", "Healthy"))
    new = conditions(Ready=("False", "FrontendNotReady"), Degraded=("False", "Healthy"))
    assert summary(condition_events(old, new)) == [("Warning", "FrontendNotReady")]
    assert condition_events(new, new) == []
