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

from kubernetes import client

from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    APPS,
    GROUP,
    HELD_CANARY,
    MODELS,
    VERSION,
    clipper_app,
    condition,
    crash,
    create,
    events,
    model_deployment,
    operator,
    reasons,
    rollback_message,
    start_model,
    swap,
    version_pods,
    wait_degraded,
    wait_for_events,
    wait_for_object,
    wait_for_traffic,
    wait_ready,
)
from clipper.testing.processes import wait_for


def test_an_unschedulable_version_rolls_back_with_the_schedulers_reason_and_json_logs(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    with operator(operator_kubeconfig, namespace, tmp_path, "--log-format", "json") as proc:
        start_model(k8s, namespace, proc, rollout=HELD_CANARY)
        swap(k8s, namespace, "v2", nodeSelector={"clipper.dev/test": "no-such-node"})
        failed = wait_degraded(k8s, namespace, "digits", proc)
        message = rollback_message(k8s, namespace, "digits")
        # A repair is a decision too: v1's Deployment deleted by hand comes back.
        client.AppsV1Api(k8s.api).delete_namespaced_deployment("digits-v1", namespace)
        # "recreated Deployment digits-v1" follows the apply's "created" line: wait
        # for it, since a count of "created" alone could be caught at any of them.
        wait_for(lambda: ": recreated Deployment digits-v1" in proc.logs(), timeout=30,
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
        start_model(k8s, namespace, proc, rollout=HELD_CANARY)
        swap(k8s, namespace, "v2")
        wait_for_traffic(k8s, namespace, "digits", "v1=90 v2=10", "canary at 10%", proc)
        crash(k8s, namespace, version_pods(k8s, namespace, "v2")[0], tail)
        failed = wait_degraded(k8s, namespace, "digits", proc)
        message = rollback_message(k8s, namespace, "digits")
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
        wait_ready(k8s, namespace, APPS, "shop", proc, timeout=90)
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
    # Each transition once: Ready; the model lost; back but not serving yet (only if a
    # reconcile of the app happens to see that moment: kwok makes the new pods ready
    # at once); serving again.
    said = [(type_, reason) for type_, reason, _ in found]
    said = said[said.index(("Normal", "Ready")) :]
    starting = [("Warning", "ModelsNotServing")] if ("Warning", "ModelsNotServing") in said else []
    assert said == [
        ("Normal", "Ready"),
        ("Warning", "ModelNotFound"),
        *starting,
        ("Normal", "Ready"),
    ], found
