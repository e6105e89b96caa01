"""Version swaps on the real control plane: canary steps, decommissioning, rollbacks.

kwok makes every scheduled pod Ready at once, so a new version becomes ready within
about a second of its Deployment; a version that must never become ready gets a
nodeSelector no node matches (the real scheduler leaves its pods Pending). Pauses
and drains are a few seconds, so a whole swap takes about ten.

Traffic is recorded from a watch on the ModelDeployment: each status write is one
event, so the recorded sequence is every traffic split the frontends were told.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kubernetes import client

from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    MODELS,
    OperatorProcess,
    TrafficRecorder,
    condition,
    condition_triple,
    crash,
    operator,
    patch_spec,
    reasons,
    serving,
    start_model,
    swap,
    version_pods,
    wait_degraded,
    wait_for_events,
    wait_for_object,
    wait_for_traffic,
)
from clipper.testing.processes import wait_for

CANARY = {
    "strategy": "Canary",
    "steps": [{"weight": 10, "pauseSeconds": 2}, {"weight": 50, "pauseSeconds": 2}],
    "drainSeconds": 1,
    "retainVersions": 1,
}
SWAP = ["v1=100", "v1=90 v2=10", "v1=50 v2=50", "v2=100"]
SWAP_EVENTS = ["RolloutStarted", "CanaryStep", "CanaryStep", "Promoted", "Retained"]


def version(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next((v for v in obj["status"].get("versions", []) if v["version"] == name), {})


def service_names(k8s: ControlPlane, namespace: str) -> set[str]:
    return {
        s.metadata.name for s in client.CoreV1Api(k8s.api).list_namespaced_service(namespace).items
    }


def replicas(k8s: ControlPlane, namespace: str, name: str) -> tuple[int, int] | None:
    """(spec.replicas, status.replicas) of Deployment ``name``, None if absent."""
    try:
        found = client.AppsV1Api(k8s.api).read_namespaced_deployment(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found.spec.replicas, found.status.replicas or 0


def test_a_version_swap_walks_its_canary_steps_then_decommissions_the_old_version(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        start_model(k8s, namespace, proc, rollout=CANARY)
        with TrafficRecorder(k8s, namespace, "digits") as traffic:
            edited = time.monotonic()
            swap(k8s, namespace, "v2")
            wait_for_object(
                k8s, namespace, MODELS, "digits",
                lambda o: version(o, "v1").get("phase") == "Retained", "v1 retained",
                timeout=60, operator=proc,
            )  # fmt: skip
            wait_for(lambda: replicas(k8s, namespace, "digits-v1") == (0, 0), timeout=30,
                     what="digits-v1 scaled to zero")  # fmt: skip
            decommissioned = time.monotonic()
        assert traffic.summaries() == SWAP
        promoted = traffic.when("v2=100") - edited
        print(
            f"\nswap v1 -> v2 (canary 10% for 2 s, 50% for 2 s; drain 1 s): edit -> v2 gets"
            f" 100% in {promoted:.1f} s, edit -> v1 decommissioned (0 replicas) in"
            f" {decommissioned - edited:.1f} s"
        )
        wait_for_events(
            k8s, namespace, "digits", lambda found: reasons(found)[-5:] == SWAP_EVENTS,
            "the swap's Events",
        )  # fmt: skip

        # Going back to a retained version is instant: no canary, it has served before.
        with TrafficRecorder(k8s, namespace, "digits") as traffic:
            swap(k8s, namespace, "v1")
            wait_for_object(k8s, namespace, MODELS, "digits", lambda o: serving(o, "v1"),
                            "back on v1", timeout=30, operator=proc)  # fmt: skip
        assert traffic.summaries() == ["v2=100", "v1=100"]
        # Ready needs one ready replica, not all: wait for the second.
        wait_for(lambda: replicas(k8s, namespace, "digits-v1") == (2, 2), timeout=30,
                 what="digits-v1 back at 2 ready replicas")  # fmt: skip

        # A third version: once v1 drains, two versions are retained, one too many:
        # the older (v2) is deleted.
        swap(k8s, namespace, "v3", rollout={"strategy": "Rolling", "steps": None})
        wait_for(lambda: replicas(k8s, namespace, "digits-v2") is None, timeout=60,
                 what="digits-v2 deleted")  # fmt: skip
        final = wait_for_object(
            k8s, namespace, MODELS, "digits",
            lambda o: version(o, "v1").get("phase") == "Retained", "v1 retained", operator=proc,
        )  # fmt: skip
        assert [v["version"] for v in final["status"]["versions"]] == ["v1", "v3"]
        # The status is written before the scale is applied (see reconcile/writes.py),
        # and the pods take a moment to go: wait for them, as for v1 above.
        wait_for(lambda: replicas(k8s, namespace, "digits-v1") == (0, 0), timeout=30,
                 what="digits-v1 scaled to zero again")  # fmt: skip
        # The deleted version's Service goes with it, through the garbage collector.
        wait_for(lambda: service_names(k8s, namespace) == {"digits-v1", "digits-v3"},
                 timeout=60, what="only the Services of v1 and v3 left")  # fmt: skip


def test_a_version_that_never_becomes_ready_is_rolled_back_and_never_gets_traffic(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        start_model(k8s, namespace, proc, rollout={**CANARY, "progressDeadlineSeconds": 4})
        with TrafficRecorder(k8s, namespace, "digits") as traffic:
            swap(k8s, namespace, "v2", nodeSelector={"clipper.dev/test": "no-such-node"})
            failed = wait_degraded(k8s, namespace, "digits", proc)
        assert set(traffic.summaries()) == {"v1=100"}
        degraded = condition(failed, "Degraded")
        assert degraded["reason"] == "ProgressDeadlineExceeded"
        assert "v2 was not ready within 4s (0/2 replicas ready)" in degraded["message"]
        assert failed["status"]["stableVersion"] == "v1"
        assert "candidateVersion" not in failed["status"]
        assert (version(failed, "v2")["phase"], version(failed, "v2")["replicas"]) == ("Failed", 0)
        assert condition(failed, "Available")["status"] == "True"  # v1 still serves
        wait_for(lambda: replicas(k8s, namespace, "digits-v2") == (0, 0), timeout=30,
                 what="digits-v2 scaled to zero")  # fmt: skip
        found = wait_for_events(
            k8s, namespace, "digits", lambda found: reasons(found, "Warning") == ["RolledBack"],
            "one RolledBack Warning",
        )  # fmt: skip
        assert "all traffic is back on v1" in next(m for _, r, m in found if r == "RolledBack")


def test_a_crash_looping_canary_sends_its_traffic_back_to_the_stable_version_at_once(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    slow = {**CANARY, "steps": [{"weight": 10, "pauseSeconds": 600}]}
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        start_model(k8s, namespace, proc, rollout=slow)
        with TrafficRecorder(k8s, namespace, "digits") as traffic:
            swap(k8s, namespace, "v2")
            wait_for_traffic(k8s, namespace, "digits", "v1=90 v2=10", "canary at 10%", proc)
            crash(k8s, namespace, version_pods(k8s, namespace, "v2")[0])
            failed = wait_degraded(k8s, namespace, "digits", proc, timeout=30)
        assert traffic.summaries() == ["v1=100", "v1=90 v2=10", "v1=100"]
        degraded = condition(failed, "Degraded")
        assert degraded["reason"] == "VersionFailing"
        assert "CrashLoopBackOff" in degraded["message"]


def test_an_operator_killed_mid_rollout_is_replaced_and_the_new_one_finishes_it(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    pause = 4
    steps = [{"weight": 10, "pauseSeconds": pause}, {"weight": 50, "pauseSeconds": pause}]
    rollout = {**CANARY, "steps": steps}
    first = OperatorProcess(operator_kubeconfig, namespace, tmp_path)
    try:
        start_model(k8s, namespace, first, rollout=rollout)
        with TrafficRecorder(k8s, namespace, "digits") as traffic:
            swap(k8s, namespace, "v2")
            wait_for_traffic(k8s, namespace, "digits", "v1=90 v2=10", "canary at 10%", first)
            first.kill()
            time.sleep(1.0)  # the pause goes on without any operator
            with operator(operator_kubeconfig, namespace, tmp_path) as second:
                wait_for_object(
                    k8s, namespace, MODELS, "digits",
                    lambda o: version(o, "v1").get("phase") == "Retained", "v1 retained",
                    timeout=60, operator=second,
                )  # fmt: skip
    finally:
        first.stop()
    assert traffic.summaries() == SWAP
    # Each step held for its whole pause, though the operator changed in between.
    assert traffic.when("v1=50 v2=50") - traffic.when("v1=90 v2=10") >= pause - 0.5
    assert traffic.when("v2=100") - traffic.when("v1=50 v2=50") >= pause - 0.5

    def v2_rollout(found: list[tuple[str, str, str]]) -> list[str]:
        said = reasons(found)
        return said[len(said) - said[::-1].index("RolloutStarted") - 1 :]

    # Every transition announced once, though two operators made them.
    wait_for_events(
        k8s, namespace, "digits", lambda found: v2_rollout(found) == SWAP_EVENTS,
        "the v2 rollout's Events, each once",
    )  # fmt: skip


def test_conditions_tell_the_truth_through_a_canary_a_refusal_and_a_rollback(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    """(Ready, Progressing, Degraded) at each stage, as kubectl shows them."""
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        start_model(k8s, namespace, proc, rollout=CANARY)
        # A healthy canary serves: Ready stays True while Progressing is True.
        with TrafficRecorder(k8s, namespace, "digits") as canary:
            swap(k8s, namespace, "v2")
            wait_for_object(
                k8s, namespace, MODELS, "digits",
                lambda o: version(o, "v1").get("phase") == "Retained", "v1 retained",
                timeout=60, operator=proc,
            )  # fmt: skip
        assert canary.summaries() == SWAP
        assert {ready for ready, _, _ in canary.states} == {"True/Serving"}
        assert "True/RolloutInProgress" in {progressing for _, progressing, _ in canary.states}
        assert canary.states[-1] == ("True/Serving", "False/RolloutComplete", "False/Healthy")
        wait_for(lambda: replicas(k8s, namespace, "digits-v1") == (0, 0), timeout=30,
                 what="digits-v1 scaled to zero")  # fmt: skip

        # A new template under the retained v1 is refused: nothing moves.
        patch_spec(k8s, namespace, MODELS, "digits",
                   {"version": "v1", "modelUri": "/models/digits-other.joblib"})  # fmt: skip
        refused = wait_for_object(
            k8s, namespace, MODELS, "digits",
            lambda o: condition(o, "Degraded").get("reason") == "VersionImmutable",
            "the refusal", timeout=30, operator=proc,
        )  # fmt: skip
        assert condition(refused, "Degraded")["message"] == (
            "v1 already exists with a different template (modelUri: /models/digits-v1.joblib"
            " -> /models/digits-other.joblib); versions are immutable: choose a new"
            " spec.version, or restore v1's template"
        )
        assert (
            condition(refused, "Degraded")["observedGeneration"]
            == (refused["metadata"]["generation"])
        )
        assert condition_triple(refused)[:2] == ("True/Serving", "False/RolloutComplete")
        assert refused["status"]["trafficSummary"] == "v2=100"
        assert version(refused, "v1")["template"]["modelUri"] == "/models/digits-v1.joblib"
        assert replicas(k8s, namespace, "digits-v1") == (0, 0)
        wait_for_events(
            k8s, namespace, "digits",
            lambda found: reasons(found, "Warning") == ["VersionImmutable"], "one Warning",
        )  # fmt: skip
        # Restoring a version's template (here: back to v2's) clears it.
        swap(k8s, namespace, "v2")
        wait_for_object(
            k8s, namespace, MODELS, "digits",
            lambda o: condition(o, "Degraded").get("status") == "False", "the refusal cleared",
            timeout=30, operator=proc,
        )  # fmt: skip

        # A rollback ends Ready on the stable version, with the cause in Degraded.
        with TrafficRecorder(k8s, namespace, "digits") as rollback:
            swap(k8s, namespace, "v3", nodeSelector={"clipper.dev/test": "no-such-node"},
                 rollout={**CANARY, "progressDeadlineSeconds": 4})  # fmt: skip
            failed = wait_degraded(k8s, namespace, "digits", proc)
        assert set(rollback.summaries()) == {"v2=100"}
        assert {ready for ready, _, _ in rollback.states} == {"True/Serving"}
        assert condition_triple(failed) == (
            "True/Serving", "False/RolledBack", "True/ProgressDeadlineExceeded"
        )  # fmt: skip
        assert condition(failed, "Ready")["message"] == "serving: v2 100% (2/2 replicas ready)"
        generation = failed["metadata"]["generation"]
        assert {c.get("observedGeneration") for c in failed["status"]["conditions"]} == {generation}
        print("\n(Ready, Progressing, Degraded) through a canary v1 -> v2:")
        print("\n".join(f"  {state}" for state in canary.states))
        print("through a rollback v2 -> v3 (never ready, deadline 4 s):")
        print("\n".join(f"  {state}" for state in rollback.states))
