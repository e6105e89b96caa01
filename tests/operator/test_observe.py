"""From a version's Deployment and pods to what the rollout state machine sees."""

from __future__ import annotations

from typing import Any

from clipper.common.rollout import VersionObservation
from clipper.operator import naming
from clipper.operator.observe import observe_versions


def deployment(
    version: str, template_hash: str = "h1", generation: int = 1, **status: Any
) -> dict[str, Any]:
    labels = {naming.LABEL_MODEL: "digits", naming.LABEL_VERSION: version}
    pod_labels = {**labels, naming.LABEL_TEMPLATE_HASH: template_hash}
    status.setdefault("observedGeneration", 1)
    return {
        "metadata": {"name": f"digits-{version}", "labels": labels, "generation": generation},
        "spec": {"template": {"metadata": {"labels": pod_labels}}},
        "status": status,
    }


def pod(
    version: str,
    ready: bool = True,
    template_hash: str = "h1",
    waiting: str | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    labels = {
        naming.LABEL_MODEL: "digits",
        naming.LABEL_VERSION: version,
        naming.LABEL_TEMPLATE_HASH: template_hash,
    }
    meta: dict[str, Any] = {"name": f"digits-{version}-{id(labels)}", "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    state = {"waiting": {"reason": waiting, "message": "back-off 40s"}} if waiting else {}
    return {
        "metadata": meta,
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "model", "restartCount": 4, "state": state}],
        },
    }


def test_counts_ready_pods_of_each_version() -> None:
    pods = [pod("v1"), pod("v1"), pod("v1", ready=False), pod("v2")]
    observed = observe_versions([deployment("v1"), deployment("v2")], pods, {})
    assert observed == {"v1": VersionObservation(2), "v2": VersionObservation(1)}


def test_only_pods_of_the_expected_template_count() -> None:
    pods = [pod("v1", template_hash="old"), pod("v1", template_hash="new")]
    observed = observe_versions([deployment("v1", "new")], pods, {"v1": "new"})
    assert observed["v1"].ready_replicas == 1
    # The status' hash wins over the Deployment's: an update not applied yet counts 0.
    observed = observe_versions([deployment("v1", "old")], pods[:1], {"v1": "new"})
    assert observed["v1"].ready_replicas == 0


def test_terminating_pods_and_deployments_do_not_count() -> None:
    gone = deployment("v2")
    gone["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    observed = observe_versions([deployment("v1"), gone], [pod("v1", deleting=True)], {})
    assert observed == {"v1": VersionObservation(0)}


def test_a_version_without_pods_is_observed_with_none_ready() -> None:
    assert observe_versions([deployment("v1")], [], {}) == {"v1": VersionObservation(0)}


def test_a_crash_loop_is_failing_with_the_pods_reason() -> None:
    pods = [pod("v2", ready=False, waiting="CrashLoopBackOff"), pod("v2")]
    seen = observe_versions([deployment("v2")], pods, {})["v2"]
    assert seen.failing
    assert seen.ready_replicas == 1
    assert "CrashLoopBackOff" in seen.message
    assert "4 restarts" in seen.message
    assert "back-off 40s" in seen.message


def test_a_crash_loop_carries_the_last_termination_message() -> None:
    crashed = pod("v2", ready=False, waiting="CrashLoopBackOff")
    reason = (
        "2026-01-01 ERROR clipper.model_wrappers.server [-] failed to load model 'digits': "
        "device cuda was asked for but no GPU is usable (torch.cuda.is_available() is False)"
    )
    (status,) = crashed["status"]["containerStatuses"]
    status["lastState"] = {"terminated": {"exitCode": 1, "message": f"loading\n{reason}\n"}}
    seen = observe_versions([deployment("v2")], [crashed], {})["v2"]
    assert seen.failing
    assert seen.message.endswith(f"; last exit 1: {reason}")


def test_an_image_that_cannot_be_pulled_is_failing() -> None:
    seen = observe_versions([deployment("v2")], [pod("v2", False, waiting="ImagePullBackOff")], {})
    assert seen["v2"].failing


def test_a_pod_that_is_only_waiting_to_start_is_not_failing() -> None:
    pods = [pod("v2", ready=False, waiting="ContainerCreating")]
    assert not observe_versions([deployment("v2")], pods, {})["v2"].failing


def test_deployment_conditions_that_will_not_heal_are_failing() -> None:
    stuck = deployment(
        "v2",
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "digits-v2-abc" has timed out progressing.',
            }
        ],
    )
    refused = deployment(
        "v3",
        conditions=[
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": "pods are forbidden: exceeded quota",
            }
        ],
    )
    observed = observe_versions([stuck, refused], [], {})
    assert observed["v2"].failing
    assert "ProgressDeadlineExceeded" in observed["v2"].message
    assert observed["v3"].failing
    assert "exceeded quota" in observed["v3"].message


def test_a_deadline_reported_about_an_older_spec_is_not_failing() -> None:
    stuck = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    updated = deployment("v2", generation=3, observedGeneration=2, conditions=[stuck])
    assert not observe_versions([updated], [], {})["v2"].failing


def test_a_progressing_deployment_is_not_failing() -> None:
    fine = deployment(
        "v2",
        conditions=[{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}],
    )
    assert not observe_versions([fine], [pod("v2")], {})["v2"].failing
