"""Events about Clipper objects."""

from __future__ import annotations

from datetime import UTC, datetime

from clipper.operator.builders import build_event

INVOLVED = {
    "apiVersion": "clipper.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "digits", "namespace": "ml", "uid": "u1", "resourceVersion": "7"},
}
NOW = datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=UTC)


def test_event_refers_to_its_object_and_says_who_reports_it() -> None:
    event = build_event(INVOLVED, "Normal", "Promoted", "v2 is stable", NOW, "pod-1")
    assert event["metadata"] == {"generateName": "digits.", "namespace": "ml"}
    assert event["involvedObject"] == {
        "apiVersion": "clipper.dev/v1alpha1",
        "kind": "ModelDeployment",
        "name": "digits",
        "namespace": "ml",
        "uid": "u1",
        "resourceVersion": "7",
    }
    assert (event["type"], event["reason"], event["message"]) == (
        "Normal",
        "Promoted",
        "v2 is stable",
    )
    assert event["source"] == {"component": "clipper-operator"}
    assert event["reportingInstance"] == "pod-1"
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2025-01-02T03:04:05Z"
    assert event["eventTime"] == "2025-01-02T03:04:05.000678Z"


def test_long_messages_are_cut_to_what_the_api_server_accepts() -> None:
    event = build_event(INVOLVED, "Warning", "RolledBack", "x" * 5000, NOW, "pod-1")
    assert len(event["message"]) == 1024
    assert event["message"].endswith("...")
