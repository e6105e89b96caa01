"""The digits example on a real kind cluster, the path a user takes.

``kubectl apply -f examples/digits/cluster/`` (models on a hostPath PersistentVolume,
loaded through its claim), predictions through the frontend's Service with Clipper
REST and with tritonclient over OIP HTTP and gRPC, feedback; then, under constant
load from several client threads: the forest swapped v1 -> v2 by canary steps (zero
failed requests), a version whose image cannot start (rolled back, traffic stays),
and a model pod and a frontend pod killed (what was lost, and that service
recovers). The tests run in this order on one deployment of the example (see
conftest.py); each checks the state it starts from.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from clipper.testing.cluster_digits import (
    APP,
    EXAMPLE,
    MANIFESTS,
    MODELS,
    STORAGE,
    ClusterDigits,
    condition,
    first_answer,
    is_ready,
    serving,
)
from clipper.testing.models import digits, digits_batch
from clipper.testing.timeouts import scaled
from clipper.testing.traffic import Traffic
from clipper.testing.waiting import wait_for

NAMESPACE = "digits"
FOREST = "digits-forest"
FRONTEND_PODS = f"clipper.dev/app={APP},app.kubernetes.io/component=frontend"
LOAD_THREADS = 4


@dataclass
class Deployed:
    example: ClusterDigits
    url: str
    grpc: str


@pytest.fixture(scope="module")
def deployed(cluster: Any, release: Any, results: Any) -> Iterator[Deployed]:
    """The example applied in namespace ``digits`` and answering; deleted after."""
    cluster.kubectl("create", "namespace", NAMESPACE)
    example = ClusterDigits(cluster.kubectl, NAMESPACE)
    try:
        started = time.monotonic()
        example.apply(STORAGE)
        example.wait(
            "pvc",
            "digits-models",
            lambda o: o["status"].get("phase") == "Bound",
            "Bound to its PersistentVolume",
            timeout=60,
        )
        example.apply(*MANIFESTS)
        example.wait("clipperapp", APP, is_ready, "Ready", timeout=300)
        results.time("kubectl apply to the ClipperApp Ready", time.monotonic() - started)
        url, grpc = example.frontend()
        _, waited = first_answer(url, digits_batch(1).tolist()[0])
        results.time("kubectl apply to the first prediction", time.monotonic() - started)
        results.note("first prediction after Ready (s)", round(waited, 1))
        yield Deployed(example, url, grpc)
    finally:
        files = [arg for path in MANIFESTS for arg in ("-f", str(path))]
        cluster.kubectl(
            "delete",
            *files,
            "-n",
            NAMESPACE,
            "--ignore-not-found",
            check=False,
            timeout=180,
        )
        cluster.kubectl(
            "delete", "namespace", NAMESPACE, "--ignore-not-found", check=False, timeout=240
        )
        cluster.kubectl("delete", "-f", str(STORAGE), "--ignore-not-found", check=False, timeout=60)


def post(conn: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST JSON on one keep-alive connection. One connection reaches one frontend
    replica (the Service balances connections, not requests), and a query id is known
    only to the replica that answered it: a label sent on a new connection may reach
    the other replica and get 404 (see e2e/README.md)."""
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    answer = conn.getresponse()
    text = answer.read()
    assert answer.status == 200, (path, answer.status, text)
    found: dict[str, Any] = json.loads(text)
    return found


def triton_labels(module_name: str, address: str, pixels: np.ndarray) -> np.ndarray:
    """Health, metadata and one batched infer with tritonclient, as its users do."""
    import importlib

    triton = importlib.import_module(module_name)
    client = triton.InferenceServerClient(url=address)
    try:
        assert client.is_server_live()
        assert client.is_model_ready(APP)
        tensor = triton.InferInput("input", list(pixels.shape), "FP64")
        tensor.set_data_from_numpy(pixels)
        result = client.infer(APP, inputs=[tensor])
        return np.asarray(result.as_numpy("output")).reshape(-1)
    finally:
        client.close()


def test_predicts_over_rest_and_both_oip_protocols_and_takes_feedback(deployed: Deployed) -> None:
    pixels, labels = digits()
    rows = range(1000, 1040)
    host, port = deployed.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=scaled(30))
    try:
        answers = [post(conn, f"/{APP}/predict", {"input": pixels[i].tolist()}) for i in rows]
        by_model = [a for a in answers if not a["default"]]
        assert len(by_model) >= 30, answers  # the SLO is 100 ms on a busy machine
        right = sum(a["output"] == labels[i] for a, i in zip(answers, rows, strict=True))
        assert right >= 0.8 * len(by_model), answers
        assert {m for a in by_model for m in a["models"]} <= set(MODELS)
        for answer, i in zip(answers, rows, strict=True):
            if not answer["default"]:
                label = {"query_id": answer["query_id"], "label": int(labels[i])}
                loss = post(conn, f"/{APP}/feedback", label)
                assert set(loss["losses"]) == set(answer["models"]), loss
                assert set(loss["weights"]) == set(MODELS)
    finally:
        conn.close()
    batch = np.ascontiguousarray(pixels[1100:1116])
    http_address = deployed.url.removeprefix("http://")
    for module_name, address in (
        ("tritonclient.http", http_address),
        ("tritonclient.grpc", deployed.grpc),
    ):
        found = triton_labels(module_name, address, batch)
        assert found.shape == (16,)
        answered = found != -1  # -1: the app's default output
        assert answered.sum() >= 12, (module_name, found)
        accuracy = (found[answered] == labels[1100:1116][answered]).mean()
        assert accuracy >= 0.8, (module_name, found, labels[1100:1116])


def under_load(deployed: Deployed, seconds: float, first_phase: str) -> Traffic:
    """``LOAD_THREADS`` clients posting digits rows to the app through its Service,
    bounded by 300,000 requests and ``seconds`` (scaled), phases named as they go."""
    return Traffic(
        deployed.url,
        APP,
        digits_batch(256).tolist(),
        threads=LOAD_THREADS,
        max_requests=300_000,
        max_seconds=scaled(seconds),
        first_phase=first_phase,
    )


def _retained(obj: dict[str, Any], version: str) -> bool:
    versions = (obj.get("status") or {}).get("versions") or []
    return any(v["version"] == version and v["phase"] == "Retained" for v in versions)


def _analysis_summary(analysis: dict[str, Any]) -> str:
    """One line of a step's analysis: the verdict, and each version's numbers."""
    numbers = "; ".join(
        f"{v['version']}: n={v.get('requests', 0)} p99={v.get('p99Millis')} ms"
        f" defaults={v.get('defaultRates') or {}} errors={v.get('errorRate', 0)}"
        for v in analysis.get("versions") or []
    )
    return f"{analysis.get('verdict')} ({numbers}) {analysis.get('message') or ''}".strip()


def _failed(obj: dict[str, Any], version: str) -> dict[str, Any] | None:
    """``version``'s entry in the status once the operator gave up on it (rolled back)."""
    versions = (obj.get("status") or {}).get("versions") or []
    return next((v for v in versions if v["version"] == version and v["phase"] == "Failed"), None)


def test_swap_forest_v1_to_v2_by_canary_steps_under_load_fails_no_request(
    deployed: Deployed, results: Any
) -> None:
    example = deployed.example
    example.wait("modeldeployment", FOREST, lambda o: serving(o, "v1"), "v1 serving")
    seen = ["v1=100"]
    failed: list[dict[str, Any]] = []
    judged: dict[str, Any] = {}  # each step's latest analysis, for the results and a failure
    load = under_load(deployed, 420, "v1=100 before")
    with load:
        wait_for(lambda: load.current.requests >= 100, timeout=60, what="load flowing")
        started = time.monotonic()
        example.apply(EXAMPLE / "swap" / "forest-v2.yaml")

        def swapped() -> bool:
            obj = example.mdep(FOREST)
            summary = (obj.get("status") or {}).get("trafficSummary") or ""
            if summary and summary != seen[-1]:
                seen.append(summary)
                load.phase(summary)
            analysis = (obj.get("status") or {}).get("analysis") or {}
            if analysis.get("version") == "v2":
                judged[f"step {analysis.get('step')}"] = _analysis_summary(analysis)
            failed[:] = [obj] if _failed(obj, "v2") else []
            return bool(failed) or (serving(obj, "v2") and _retained(obj, "v1"))

        wait_for(
            swapped,
            timeout=300,
            interval=0.25,
            what="v2 serving and v1 retained",
            seen=lambda: seen,
        )
        swap_seconds = time.monotonic() - started
        if failed:  # say why at once, with the operator's numbers, not after a timeout
            status = failed[0].get("status") or {}
            pytest.fail(
                f"v2 was rolled back: {_failed(failed[0], 'v2')}; analysis:"
                f" {json.dumps(status.get('analysis'))};"
                f" Degraded: {condition(failed[0], 'Degraded')}; traffic seen: {seen};"
                f" steps judged: {judged}"
            )
        load.phase("v2=100 after (v1 retained)")
        after = load.current
        wait_for(lambda: after.requests >= 200, timeout=60, what="load after the swap")
    total = load.total()
    results.phases(
        "swap",
        load.phases,
        title=(
            f"forest v1 -> v2 (canary 20% / 50%, 10 s each) under load from {LOAD_THREADS} "
            f"threads: {total.requests} requests, {total.failed} failed, {total.defaults} "
            f"default answers; apply to v1 retained {swap_seconds:.1f} s"
        ),
    )
    results.note(
        "swap",
        {
            "requests": total.requests,
            "failed": total.failed,
            "defaults": total.defaults,
            "seconds": round(swap_seconds, 1),
            "traffic_summaries": seen,
            "analysis": judged,
        },
    )
    assert total.failed == 0, total.failures
    assert seen[1:] == ["v1=80 v2=20", "v1=50 v2=50", "v2=100"], seen
    assert total.answered > 0


def test_a_version_whose_image_cannot_start_is_rolled_back_and_traffic_stays(
    deployed: Deployed, results: Any
) -> None:
    example = deployed.example
    stable = example.wait(
        "modeldeployment", FOREST, lambda o: serving(o, o["status"]["stableVersion"]), "serving"
    )["status"]["stableVersion"]
    load = under_load(deployed, 360, f"{stable}=100, v3-broken applied")
    with load:
        example.apply(EXAMPLE / "swap" / "forest-broken.yaml")
        rolled = example.wait(
            "modeldeployment",
            FOREST,
            lambda o: condition(o, "Degraded").get("status") == "True",
            "Degraded after the rollback",
            timeout=240,
        )
        load.phase("after the rollback")
        after = load.current
        wait_for(lambda: after.requests >= 200, timeout=60, what="load after the rollback")
    total = load.total()
    results.phases(
        "rollback",
        load.phases,
        title=(
            f"forest {stable} -> v3-broken (image not on the node) under load: "
            f"{total.requests} requests, {total.failed} failed, {total.defaults} default answers"
        ),
    )
    status = rolled["status"]
    degraded = condition(rolled, "Degraded")
    broken = next(v for v in status["versions"] if v["version"] == "v3-broken")
    results.note("rollback", {"degraded": degraded, "version": broken})
    assert status["stableVersion"] == stable
    assert status["trafficSummary"] == f"{stable}=100"
    assert not status.get("candidateVersion")
    assert broken["phase"] == "Failed"
    assert "v3-broken" in degraded["message"]
    # The kubelet's reason, quoted: ErrImageNeverPull, because the chart's
    # image.pullPolicy=Never reaches the containers the operator creates, so the
    # node never asks a registry (nor a resolver outside the test's network).
    assert "clipper-model:0.0.0-does-not-exist" in broken["message"], broken
    assert "ErrImageNeverPull" in broken["message"], broken
    warnings = [e for e in example.events(FOREST) if e["type"] == "Warning"]
    assert any(e["reason"] == "RolledBack" for e in warnings), warnings
    assert total.failed == 0, total.failures


def _kill(example: ClusterDigits, pod: str) -> None:
    """Delete at once, without the grace period: what a node or process crash does."""
    example.run("delete", "pod", pod, "--grace-period=0", "--force", "--wait=false")


def _replaced(example: ClusterDigits, selector: str, victim: str, count: int) -> bool:
    ready = example.ready_pods(selector)
    return len(ready) >= count and victim not in ready


def test_killing_a_model_pod_and_a_frontend_pod_under_load_loses_little_and_recovers(
    deployed: Deployed, results: Any
) -> None:
    example = deployed.example
    model_pods = "clipper.dev/model=digits-logreg"
    example.wait("clipperapp", APP, is_ready, "Ready")
    wait_for(
        lambda: len(example.ready_pods(FRONTEND_PODS)) == 2,
        timeout=120,
        what="both frontend pods ready",
    )
    load = under_load(deployed, 420, "steady")
    with load:
        wait_for(lambda: load.current.requests >= 200, timeout=60, what="load flowing")
        (model_victim,) = example.ready_pods(model_pods)
        load.phase("model pod killed, until replaced")
        _kill(example, model_victim)
        wait_for(
            lambda: _replaced(example, model_pods, model_victim, 1),
            timeout=180,
            what="a new digits-logreg pod ready",
        )
        frontend_victim = example.ready_pods(FRONTEND_PODS)[0]
        load.phase("frontend pod killed, until replaced")
        _kill(example, frontend_victim)
        wait_for(
            lambda: _replaced(example, FRONTEND_PODS, frontend_victim, 2),
            timeout=180,
            what="a new frontend pod ready",
        )
        load.phase("recovered")
        recovered = load.current
        wait_for(lambda: recovered.requests >= 300, timeout=60, what="load after recovery")
    steady, model_killed, frontend_killed, _ = load.phases
    results.phases(
        "kills",
        load.phases,
        title=(
            f"a digits-logreg pod and a frontend pod (of 2) killed under load from "
            f"{LOAD_THREADS} threads: lost {model_killed.failed} + {frontend_killed.failed} "
            f"requests, {model_killed.defaults} + {frontend_killed.defaults} default answers"
        ),
    )
    assert steady.failed == 0, steady.failures
    assert recovered.failed == 0, recovered.failures
    assert recovered.answered > 0
    assert "digits-logreg" in recovered.models, recovered.models
