"""Model storage on the real control plane: a fetch that fails rolls the version back.

kwok runs no containers, so the failure is an init container status patched as a
kubelet writes it (Init:CrashLoopBackOff, with ``clipper model fetch``'s last
ERROR line as the termination message). The real API server also checks what the
operator builds: the CRD's modelUri rule, the init container, the volumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    HELD_CANARY,
    MODELS,
    condition,
    crash_looping,
    operator,
    patch_pod_status,
    patch_spec,
    rollback_message,
    start_model,
    version_pods,
    wait_degraded,
    wait_for_traffic,
)

URI = "https://models.example/digits/v2/model.joblib#sha256=" + "0f" * 32
CAUSE = "fetching https://models.example/digits/v2/model.joblib: HTTP 404 Not Found"


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
            crash_looping("fetch-model", pod.spec.init_containers[0].image, tail)
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
    patch_pod_status(k8s, namespace, pod, status)


def test_a_model_that_cannot_be_fetched_rolls_back_with_the_fetch_error(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        start_model(k8s, namespace, proc, rollout=HELD_CANARY)
        patch_spec(k8s, namespace, MODELS, "digits", {"version": "v2", "modelUri": URI})
        wait_for_traffic(k8s, namespace, "digits", "v1=90 v2=10", "canary at 10%", proc)
        pod = version_pods(k8s, namespace, "v2")[0]
        (init,) = pod.spec.init_containers
        assert init.args[:2] == ["--uri", URI]
        assert [v.name for v in pod.spec.volumes or []] == ["model-store"]
        fetch_failed(k8s, namespace, pod)
        failed = wait_degraded(k8s, namespace, "digits", proc)
        message = rollback_message(k8s, namespace, "digits")
    degraded = condition(failed, "Degraded")
    assert degraded["reason"] == "VersionFailing"
    for text in (degraded["message"], message):
        assert "init container fetch-model: CrashLoopBackOff (3 restarts)" in text
        assert f"last exit Error (code 1): {CAUSE}" in text
    assert failed["status"]["trafficSummary"] == "v1=100"
