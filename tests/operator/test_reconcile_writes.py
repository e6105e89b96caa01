"""What the operator logs about its writes: a status change in words, an apply's effect."""

from __future__ import annotations

import logging

import pytest

from clipper.common import api
from clipper.operator.reconcile.writes import applied, status_changes

OLD = {
    "stableVersion": "v1",
    "trafficSummary": "v1=90 v2=10",
    "rollout": {"step": 0, "stepStartedAt": "2026-11-27T12:00:00Z"},
    "versions": [
        {"version": "v1", "phase": "Serving", "replicas": 2, "readyReplicas": 2},
        {"version": "v2", "phase": "Progressing", "replicas": 2, "readyReplicas": 1},
    ],
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Serving", "message": "v1 serves"},
        {"type": "Degraded", "status": "False", "reason": "Healthy", "message": ""},
    ],
}
ROLLED_BACK = {
    "stableVersion": "v1",
    "trafficSummary": "v1=100",
    "rollout": {},
    "versions": [
        {"version": "v1", "phase": "Serving", "replicas": 2, "readyReplicas": 2},
        {"version": "v2", "phase": "Failed", "replicas": 0, "readyReplicas": 1},
    ],
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Serving", "message": "v1 serves"},
        {"type": "Degraded", "status": "True", "reason": "VersionFailing", "message": "v2 ..."},
    ],
}


def test_a_status_change_is_said_in_words() -> None:
    assert status_changes(OLD, ROLLED_BACK) == [
        "trafficSummary v1=90 v2=10 -> v1=100",
        "canary step 0 -> None",
        "v2 phase Progressing -> Failed",
        "v2 replicas 2 -> 0",
        "Degraded True (VersionFailing)",
    ]


def test_times_alone_are_no_change() -> None:
    later = {**OLD, "rollout": {"step": 0, "stepStartedAt": "2026-11-27T12:05:00Z"}}
    assert status_changes(OLD, later) == []


MD = api.ModelDeployment.model_validate(
    {
        "metadata": {"name": "digits", "namespace": "team-a"},
        "spec": {"version": "v1", "framework": "sklearn", "modelUri": "/m.joblib"},
    }
)


def deployment(uid: str = "u1", replicas: int = 2) -> dict[str, object]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "digits-v1", "uid": uid, "labels": {"a": "b"}},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": 1},
    }


def test_an_apply_says_whether_it_created_updated_or_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="clipper.operator.reconcile.writes"):
        assert applied(MD, None, deployment()) == "created"
        assert applied(MD, deployment(), deployment(replicas=3)) == "updated"  # a hand edit
        assert applied(MD, deployment(), deployment(uid="u2")) == "created"  # deleted meanwhile
        unchanged = deployment()
        unchanged["status"] = {"readyReplicas": 2}  # status is not ours
        assert applied(MD, deployment(), unchanged) is None
    assert [r.getMessage() for r in caplog.records] == [
        "ModelDeployment team-a/digits: created Deployment digits-v1",
        "ModelDeployment team-a/digits: updated Deployment digits-v1",
        "ModelDeployment team-a/digits: created Deployment digits-v1",
    ]
    assert caplog.records[0].k8s_object == {  # type: ignore[attr-defined]
        "kind": "ModelDeployment",
        "namespace": "team-a",
        "name": "digits",
    }
