"""Model storage on the real control plane: a fetch that fails rolls the version back.

kwok runs no containers, so the failure is an init container status patched as a
kubelet writes it (Init:CrashLoopBackOff, with ``clipper model fetch``'s last
ERROR line as the termination message). The real API server also checks what the
operator builds: the CRD's modelUri rule, the init container, the volumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    MODELS,
    OperatorProcess,
    condition,
    create,
    model_deployment,
    operator,
    patch_spec,
    reasons,
    wait_for_events,
    wait_for_object,
)

URI = "https://models.example/digits/v2/model.joblib#sha256=" + "0f" * 32
CAUSE = "fetching https://models.example/digits/v2/model.joblib: HTTP 404 Not Found"

CANARY = {
    "strategy": "Canary",
    "steps": [{"weight": 10, "pauseSeconds": 600}],
    "drainSeconds": 1,
    "progressDeadlineSeconds": 4,
}


def start_model(k8s: ControlPlane, namespace: str, proc: OperatorProcess) -> None:
    create(k8s, namespace, model_deployment("digits", replicas=2, rollout=CANARY))
    wait_for_object(
        k8s, namespace, MODELS, "digits",
        lambda o: (o.get("status") or {}).get("trafficSummary") == "v1=100", "v1 serving",
        timeout=60, operator=proc,
    )  # fmt: skip


def rollback_message(k8s: ControlPlane, namespace: str) -> str:
    found = wait_for_events(
        k8s, namespace, "digits", lambda found: "RolledBack" in reasons(found, "Warning"),
        "a RolledBack Warning",
    )  # fmt: skip
    return next(message for _, reason, message in found if reason == "RolledBack")


def fetch_failed(k8s: ControlPlane, namespace: str, pod: Any) -> None:
    """The init container in CrashLoopBackOff after ``clipper model fetch`` exited 1."""
    tail = (
        "2026-11-27 12:00:00,001 WARNING urllib3.connectionpool [-] Retrying\n"
        f"2026-11-27 12:00:01,002 ERROR clipper.model_wrappers.cli [-] {CAUSE}\n"
    )
    status = {
        "phase": "Pending",
        "conditions": [{"type": "Ready", "status": "False"},
                       {"type": "Initialized", "status": "False"}],
        "initContainerStatuses": [
            {
                "name": "fetch-model",
                "image": pod.spec.init_containers[0].image,
                "imageID": "",
                "ready": False,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                                      "message": "back-off 40s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": tail}},
            }
        ],
        "containerStatuses": [
            {
                "name": "model",
                "image": pod.spec.containers[0].image,
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}},
            }
        ],
    }  # fmt: skip
    client.CoreV1Api(k8s.api).patch_namespaced_pod_status(
        pod.metadata.name, namespace, {"status": status}
    )


def test_a_model_that_cannot_be_fetched_rolls_back_with_the_fetch_error(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        start_model(k8s, namespace, proc)
        patch_spec(k8s, namespace, MODELS, "digits", {"version": "v2", "modelUri": URI})
        wait_for_object(k8s, namespace, MODELS, "digits",
                        lambda o: o["status"].get("trafficSummary") == "v1=90 v2=10",
                        "canary at 10%", operator=proc)  # fmt: skip
        pods = client.CoreV1Api(k8s.api).list_namespaced_pod(
            namespace, label_selector="clipper.dev/version=v2"
        )
        pod = pods.items[0]
        (init,) = pod.spec.init_containers
        assert init.args[:2] == ["--uri", URI]
        assert [v.name for v in pod.spec.volumes or []] == ["model-store"]
        fetch_failed(k8s, namespace, pod)
        failed = wait_for_object(
            k8s, namespace, MODELS, "digits",
            lambda o: condition(o, "Degraded").get("status") == "True", "Degraded",
            timeout=60, operator=proc,
        )  # fmt: skip
        message = rollback_message(k8s, namespace)
    degraded = condition(failed, "Degraded")
    assert degraded["reason"] == "VersionFailing"
    for text in (degraded["message"], message):
        assert "init container fetch-model: CrashLoopBackOff (3 restarts)" in text
        assert f"last exit Error (code 1): {CAUSE}" in text
    assert failed["status"]["trafficSummary"] == "v1=100"
