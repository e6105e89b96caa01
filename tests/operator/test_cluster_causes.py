"""Causes on the real control plane: what a rollback says, and how often.

kwok runs no containers, so the causes come from what the real scheduler writes
(a nodeSelector no node matches leaves a pod Pending, with its reason) and from
pod statuses patched as a kubelet would write them (a crash loop with the
container's termination message). The parsing of every cause (image pull errors,
a model that cannot be loaded, long messages) is unit-tested on the same shapes in
``tests/operator/test_observe.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubernetes import client

from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    APPS,
    GROUP,
    MODELS,
    VERSION,
    OperatorProcess,
    clipper_app,
    condition,
    create,
    events,
    model_deployment,
    operator,
    patch_spec,
    reasons,
    wait_for_events,
    wait_for_object,
)
from clipper.testing.processes import wait_for

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


def swap(k8s: ControlPlane, namespace: str, **spec: Any) -> None:
    patch_spec(k8s, namespace, MODELS, "digits",
               {"version": "v2", "modelUri": "/models/digits-v2.joblib", **spec})  # fmt: skip


def rolled_back(k8s: ControlPlane, namespace: str, proc: OperatorProcess) -> dict[str, Any]:
    return wait_for_object(
        k8s, namespace, MODELS, "digits",
        lambda o: condition(o, "Degraded").get("status") == "True", "Degraded",
        timeout=60, operator=proc,
    )  # fmt: skip


def rollback_message(k8s: ControlPlane, namespace: str) -> str:
    found = wait_for_events(
        k8s, namespace, "digits", lambda found: "RolledBack" in reasons(found, "Warning"),
        "a RolledBack Warning",
    )  # fmt: skip
    return next(message for _, reason, message in found if reason == "RolledBack")


def test_an_unschedulable_version_rolls_back_with_the_schedulers_reason_and_json_logs(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    with operator(operator_kubeconfig, namespace, tmp_path, "--log-format", "json") as proc:
        start_model(k8s, namespace, proc)
        swap(k8s, namespace, nodeSelector={"clipper.dev/test": "no-such-node"})
        failed = rolled_back(k8s, namespace, proc)
        message = rollback_message(k8s, namespace)
        # A repair is a decision too: v1's Deployment deleted by hand comes back.
        client.AppsV1Api(k8s.api).delete_namespaced_deployment("digits-v1", namespace)
        wait_for(lambda: proc.logs().count("created Deployment digits-v1") == 2, timeout=30,
                 what="the repair logged")  # fmt: skip
    degraded = condition(failed, "Degraded")
    assert degraded["reason"] == "ProgressDeadlineExceeded"
    for text in (degraded["message"], message):
        assert "v2 was not ready within 4s (0/2 replicas ready): pod digits-v2-" in text
        assert ": Unschedulable: 0/" in text
        assert "didn't match Pod's node affinity/selector" in text
    # Every line the operator wrote, kopf's included, is one JSON object.
    lines = [json.loads(line) for line in proc.logs().splitlines() if line.strip()]
    mine = {"kind": "ModelDeployment", "namespace": namespace, "name": "digits"}
    about = [line for line in lines if line.get("object") == mine]
    said = [(line["level"], line["message"]) for line in about]
    assert any(level == "INFO" and "RolloutStarted" in text for level, text in said), said
    assert any(level == "INFO" and "candidateVersion None -> v2" in text for level, text in said), (
        said
    )
    assert any(level == "WARNING" and "RolledBack" in text and "Unschedulable" in text
               for level, text in said), said  # fmt: skip
    created = ("INFO", f"ModelDeployment {namespace}/digits: created Deployment digits-v1")
    assert said.count(created) == 2  # at the first deploy, and the repair
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)


def crash(k8s: ControlPlane, namespace: str, pod: Any, log_tail: str) -> None:
    """Report a container in CrashLoopBackOff after it exited with ``log_tail`` as its
    termination message (``FallbackToLogsOnError``), as a kubelet would."""
    status = {
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {
                "name": "model",
                "image": pod.spec.containers[0].image,
                "imageID": "",
                "ready": False,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                                      "message": "back-off 40s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                             "message": log_tail}},
            }
        ],
    }  # fmt: skip
    client.CoreV1Api(k8s.api).patch_namespaced_pod_status(
        pod.metadata.name, namespace, {"status": status}
    )


def test_a_crash_rolls_back_with_the_containers_termination_message(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    reason = (
        "failed to load model 'digits' version 'v2' (sklearn, uri '/models/digits-v2.joblib'):"
        " FileNotFoundError: [Errno 2] No such file or directory: '/models/digits-v2.joblib'"
    )
    tail = (
        "2026-11-27 12:00:00,001 INFO clipper.model_wrappers.server [-] listening\n"
        f"2026-11-27 12:00:01,002 ERROR clipper.model_wrappers.server [-] {reason}\n"
    )
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        start_model(k8s, namespace, proc)
        swap(k8s, namespace)
        wait_for_object(k8s, namespace, MODELS, "digits",
                        lambda o: o["status"].get("trafficSummary") == "v1=90 v2=10",
                        "canary at 10%", operator=proc)  # fmt: skip
        pods = client.CoreV1Api(k8s.api).list_namespaced_pod(
            namespace, label_selector="clipper.dev/version=v2"
        )
        crash(k8s, namespace, pods.items[0], tail)
        failed = rolled_back(k8s, namespace, proc)
        message = rollback_message(k8s, namespace)
    degraded = condition(failed, "Degraded")
    assert degraded["reason"] == "VersionFailing"
    for text in (degraded["message"], message):
        assert f"CrashLoopBackOff (3 restarts); last exit Error (code 1): {reason}" in text
        assert "back-off" not in text


def test_deleting_a_model_a_ready_app_uses_posts_one_warning(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    custom = client.CustomObjectsApi(k8s.api)
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        create(k8s, namespace, model_deployment("digits", replicas=1))
        create(k8s, namespace, clipper_app("shop", ["digits"]))
        wait_for_object(k8s, namespace, APPS, "shop",
                        lambda app: condition(app, "Ready").get("status") == "True",
                        "shop Ready", timeout=90, operator=proc)  # fmt: skip
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, MODELS, "digits")
        wait_for_object(k8s, namespace, APPS, "shop",
                        lambda app: condition(app, "Degraded").get("reason") == "ModelNotFound",
                        "shop Degraded", timeout=30, operator=proc)  # fmt: skip
        # The model comes back: the app's Ready Event is posted after every Event of
        # the loss (one worker per object), so once it is there, all are.
        create(k8s, namespace, model_deployment("digits", replicas=1))
        wait_for_events(k8s, namespace, "shop",
                        lambda found: reasons(found, "Normal").count("Ready") >= 2,
                        "shop Ready again", timeout=60)  # fmt: skip
        found = events(k8s, namespace, "shop")
    # Each transition once: Ready; the model lost; back but not serving yet; serving.
    said = [(type_, reason) for type_, reason, _ in found]
    assert said[said.index(("Normal", "Ready")) :] == [
        ("Normal", "Ready"),
        ("Warning", "ModelNotFound"),
        ("Warning", "ModelsNotServing"),
        ("Normal", "Ready"),
    ], found
