"""From a version's Deployment and pods to what the rollout state machine sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clipper.common.rollout import VersionObservation
from clipper.operator import naming, observe
from clipper.operator.observe import observe_versions
from clipper.testing.file_server import serve_directory
from clipper.testing.model_servers import serve_command
from clipper.testing.processes import ClipperProcess


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


def test_a_crash_loop_names_the_last_exit_not_the_back_off() -> None:
    crashed = pod("v2", ready=False, waiting="CrashLoopBackOff")
    reason = (
        "failed to load model 'digits': device cuda was asked for but no GPU is usable"
        " (torch.cuda.is_available() is False)"
    )
    log = (
        "2026-01-01 12:00:00,001 INFO clipper.model_wrappers.server [-] loading\n"
        f"2026-01-01 12:00:01,002 ERROR clipper.model_wrappers.server [-] {reason}\n"
        "2026-01-01 12:00:01,003 INFO clipper.model_wrappers.server [-] closed\n"
    )
    (status,) = crashed["status"]["containerStatuses"]
    status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "message": log}}
    seen = observe_versions([deployment("v2")], [crashed], {})["v2"]
    assert seen.failing
    assert seen.message.endswith(
        f"CrashLoopBackOff (4 restarts); last exit Error (code 1): {reason}"
    )
    assert "back-off" not in seen.message


def test_an_image_that_cannot_be_pulled_is_failing() -> None:
    seen = observe_versions([deployment("v2")], [pod("v2", False, waiting="ImagePullBackOff")], {})
    assert seen["v2"].failing


def test_an_image_missing_on_the_node_under_pull_policy_never_is_failing() -> None:
    # What a kind cluster's kubelet says when the image was not `kind load`ed: it never
    # heals by itself (the kubelet will not pull), so the version fails at once.
    seen = observe_versions([deployment("v2")], [pod("v2", False, waiting="ErrImageNeverPull")], {})
    assert seen["v2"].failing
    assert "ErrImageNeverPull" in seen["v2"].message


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


# --- causes, from pod statuses as the API server returns them ---------------------------

UNSCHEDULABLE = (
    "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
    "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
)


def pending_pod(version: str = "v2") -> dict[str, Any]:
    """A pod the scheduler cannot place (``kubectl get pod -o json``, trimmed)."""
    found = pod(version, ready=False)
    found["status"] = {
        "phase": "Pending",
        "qosClass": "Burstable",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-11-27T12:00:00Z",
                "reason": "Unschedulable",
                "message": UNSCHEDULABLE,
            }
        ],
    }
    return found


def image_pull_pod(version: str = "v2") -> dict[str, Any]:
    found = pod(version, ready=False)
    found["status"]["containerStatuses"] = [
        {
            "name": "model",
            "image": "registry.example/clipper-model:nope",
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": 0,
            "lastState": {},
            "state": {
                "waiting": {
                    "reason": "ErrImagePull",
                    "message": 'failed to pull and unpack image "registry.example/clipper-model'
                    ':nope": not found',
                }
            },
        }
    ]
    return found


def test_an_unschedulable_version_is_not_failing_but_names_the_schedulers_reason() -> None:
    seen = observe_versions([deployment("v2")], [pending_pod(), pending_pod()], {})["v2"]
    assert not seen.failing  # a node may still come (an autoscaler): the deadline decides
    assert seen.ready_replicas == 0
    assert seen.message.startswith("pod digits-v2-")
    assert seen.message.endswith(f": Unschedulable: {UNSCHEDULABLE}")


def test_ready_pods_say_nothing() -> None:
    assert observe_versions([deployment("v2")], [pod("v2")], {})["v2"].message == ""


def test_an_image_pull_error_is_failing_with_the_kubelets_message() -> None:
    seen = observe_versions([deployment("v2")], [image_pull_pod()], {})["v2"]
    assert seen.failing
    assert "container model: ErrImagePull (0 restarts)" in seen.message
    assert 'clipper-model:nope": not found' in seen.message


def test_a_container_that_just_exited_is_the_cause_before_it_is_a_crash_loop() -> None:
    exited = pod("v2", ready=False)
    exited["status"]["containerStatuses"] = [
        {
            "name": "model",
            "ready": False,
            "restartCount": 0,
            "state": {
                "terminated": {
                    "exitCode": 137,
                    "reason": "OOMKilled",
                    "startedAt": "2026-11-27T12:00:00Z",
                    "finishedAt": "2026-11-27T12:00:09Z",
                }
            },
        }
    ]
    seen = observe_versions([deployment("v2")], [exited], {})["v2"]
    assert not seen.failing
    assert seen.message.endswith("container model: exited OOMKilled (code 137)")


def test_a_long_cause_is_cut_in_the_middle() -> None:
    crashed = pod("v2", ready=False, waiting="CrashLoopBackOff")
    (status,) = crashed["status"]["containerStatuses"]
    line = "ERROR failed to load: " + "x" * 2000 + " the end"
    status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "message": line}}
    seen = observe_versions([deployment("v2")], [crashed], {})["v2"]
    assert len(seen.message) <= observe.MESSAGE_TAIL
    assert "ERROR failed to load" in seen.message
    assert seen.message.endswith(" the end")


@pytest.mark.parametrize("log_json", [False, True], ids=["text", "json"])
def test_a_model_that_cannot_be_fetched_names_its_uri_and_the_error(
    tmp_path: Path, log_json: bool
) -> None:
    """The real model server, given a URI that does not exist, as the kubelet would
    report its exit with ``FallbackToLogsOnError`` (the tail of its log)."""
    missing = tmp_path / "models" / "digits-v2.joblib"
    flags = ["--log-json"] if log_json else []
    args = [*flags, *serve_command("sklearn", "digits", uri=missing, metrics=False)]
    server = ClipperProcess(args, log_dir=tmp_path)
    try:
        code = server.wait(timeout=60)
    finally:
        server.stop()
    crashed = pod("v2", ready=False, waiting="CrashLoopBackOff")
    (status,) = crashed["status"]["containerStatuses"]
    tail = server.logs()[-2048:]
    status["lastState"] = {"terminated": {"exitCode": code, "reason": "Error", "message": tail}}
    seen = observe_versions([deployment("v2")], [crashed], {})["v2"]
    assert seen.failing
    assert f"last exit Error (code {code}): failed to load model 'digits'" in seen.message
    assert str(missing) in seen.message
    assert code != 0


def test_a_model_fetch_that_fails_in_the_init_container_fails_the_version(
    tmp_path: Path,
) -> None:
    """The real ``clipper model fetch`` against a real HTTP server that has no such
    file, reported as the kubelet does for an init container in Init:CrashLoopBackOff:
    its status has the log's tail as termination message; the model container waits."""
    with serve_directory(tmp_path) as web:
        uri = f"{web}/models/digits-v2.joblib"
        fetcher = ClipperProcess(
            ["model", "fetch", "--uri", uri, "--dest", str(tmp_path / "m.joblib")],
            log_dir=tmp_path,
        )
        try:
            code = fetcher.wait(timeout=60)
        finally:
            fetcher.stop()
    failed = pod("v2", ready=False, waiting="PodInitializing")
    failed["status"]["initContainerStatuses"] = [
        {
            "name": "fetch-model",
            "restartCount": 2,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
            "lastState": {
                "terminated": {"exitCode": code, "reason": "Error", "message": fetcher.logs()}
            },
        }
    ]
    seen = observe_versions([deployment("v2")], [failed], {})["v2"]
    assert code == 1
    assert seen.failing
    assert "init container fetch-model: CrashLoopBackOff (2 restarts)" in seen.message
    assert f"last exit Error (code 1): fetching {uri}: HTTP 404" in seen.message
