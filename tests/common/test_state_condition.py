"""``StateBackendReachable`` from what each frontend reports of its state backend.

The reports are read from documents shaped as ``GET /v1/stats/versions`` answers
them (the live test of that endpoint is in tests/frontend/state); here the rule:
how many of how many, since the earliest outage, Unknown when nobody answered,
and the transition time that moves only with the status.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clipper.common import api
from clipper.common.state_condition import (
    TYPE,
    StateReport,
    report_of,
    reports_of,
    set_state_condition,
    state_condition,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
UP = StateReport("redis", True)
# 2026-01-01T00:00:00Z and 00:01:40Z
EARLY = StateReport("redis", False, NOW.timestamp(), "ConnectionError: refused")
LATE = StateReport("redis", False, NOW.timestamp() + 100, "TimeoutError: timed out")


def test_every_frontend_reaching_the_backend_is_true() -> None:
    status, reason, message = state_condition("redis", 3, [UP, UP, UP])
    assert (status, reason) == ("True", "Reachable")
    assert message == "all 3 frontends that answered reach the redis backend"


def test_some_frontends_unreachable_is_false_naming_how_many_and_since_the_first() -> None:
    status, reason, message = state_condition("redis", 4, [UP, LATE, EARLY])
    assert (status, reason) == ("False", "StateBackendUnreachable")
    assert message.startswith(
        "2 of 3 frontends report the redis backend unreachable since 2026-01-01T00:00:00Z "
        "(ConnectionError: refused)"
    )
    assert message.endswith("; 1 of 4 frontends did not answer")


def test_no_frontend_answering_is_unknown() -> None:
    assert state_condition("redis", 2, [])[:2] == ("Unknown", "NoReports")
    assert "none of the 2 ready frontends answered" in state_condition("redis", 2, [])[2]
    assert state_condition("redis", 0, [])[2] == "no ready frontend to ask"


def test_an_in_process_backend_is_reachable_without_asking() -> None:
    assert state_condition("memory", 0, [])[:2] == ("True", "InProcess")


def test_reports_come_from_the_documents_that_carry_one() -> None:
    documents = [
        {"instance": "a", "state_backend": {"backend": "redis", "reachable": True}},
        {"instance": "b"},  # a frontend from before the field: no word either way
        {
            "instance": "c",
            "state_backend": {
                "backend": "redis",
                "reachable": False,
                "unreachable_since": NOW.timestamp(),
                "error": "ConnectionError: refused",
            },
        },
        {"instance": "d", "state_backend": {"backend": "redis", "reachable": "no"}},
    ]
    assert reports_of(documents) == [UP, EARLY]
    assert report_of({"state_backend": None}) is None


def test_the_transition_time_moves_with_the_status_only() -> None:
    conditions: list[api.Condition] = []
    set_state_condition(conditions, "redis", 2, [UP, UP], NOW, 1)
    later = NOW + timedelta(minutes=1)
    set_state_condition(conditions, "redis", 2, [UP, EARLY], later, 1)
    set_state_condition(conditions, "redis", 2, [LATE, EARLY], later + timedelta(minutes=1), 1)
    found = api.find_condition(conditions, TYPE)
    assert found is not None
    assert (found.status, found.last_transition_time) == ("False", later)
    assert found.message.startswith("2 of 2 frontends")
