"""Canary analysis on the real control plane, with a real frontend counting real answers.

kwok runs no containers, so the frontend and the two model versions run here, on
127.0.0.1: ``echo`` v1 (the identity) and v2 (the identity after a sleep longer
than the app's SLO), behind one ``clipper frontend`` whose routes split the
traffic 50/50 as the canary step does. The operator finds frontends as it does
in a cluster -- the ready pods of the app's frontend, at their IP and their
container port named ``http`` -- so the test stands one in for it: a pod with
the frontend's labels and that port, never scheduled (no node matches it), owned
by a ConfigMap so that the app's ReplicaSet does not adopt it, whose status says
Ready at 127.0.0.1, as a kubelet would write it.

The canary's one step holds for an hour: only the analysis can end it. No
timing is asserted; the tests wait, bounded, for the status.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clipper.testing.controlplane import ControlPlane
from clipper.testing.frontend import FrontendProcess, route, start_model_servers, write_routes
from clipper.testing.k8s_clipper import (
    MODELS,
    OperatorProcess,
    clipper_app,
    condition,
    create,
    frontend_stand_in,
    operator,
    rollback_message,
    start_model,
    swap,
    wait_degraded,
    wait_for_object,
    wait_for_traffic,
)
from clipper.testing.local import LoadLoop
from clipper.testing.model_servers import ModelServer

pytestmark = pytest.mark.controlplane

SLO_MS = 200
ECHO_ARGS = ["--input-datatype", "FP64", "--input-shape=-1,2", "--threads", "1"]
CANARY = {
    "strategy": "Canary",
    "steps": [{"weight": 50, "pauseSeconds": 3600}],
    "drainSeconds": 1,
    "analysis": {"minSamples": 40, "intervalSeconds": 1, "warmupSeconds": 0, "failureSeconds": 0},
}


@pytest.fixture(scope="module")
def versions() -> Iterator[list[ModelServer]]:
    """``echo`` v1 (fast) and v2 (slower than the SLO), as model servers here."""
    slow = {"CLIPPER_TESTING_DELAY_S": "0.6"}
    specs = [
        {
            "framework": "python",
            "uri": f"clipper.testing.functions:{function}",
            "name": "echo",
            "args": [*ECHO_ARGS, "--version", version],
            "env": env,
        }
        for version, function, env in (("v1", "identity", None), ("v2", "slow_identity", slow))
    ]
    servers = start_model_servers(specs)
    yield servers
    for server in servers:
        server.stop()


@contextlib.contextmanager
def frontend(tmp_path: Path, servers: list[ModelServer]) -> Iterator[FrontendProcess]:
    """A frontend serving app ``echo`` with the canary's split (v1=50 v2=50)."""
    versions = [
        {"version": v, "weight": 50, "replicas": [s.address]}
        for v, s in zip(("v1", "v2"), servers, strict=True)
    ]
    app = route("echo", {"echo": versions}, latency_slo_ms=SLO_MS, cache={"enabled": False})
    routes = write_routes(tmp_path / "routes.yaml", app)
    with FrontendProcess(routes) as started:
        yield started.wait_ready()


def canary_with_analysis(
    k8s: ControlPlane, namespace: str, proc: OperatorProcess, fe: FrontendProcess
) -> None:
    """v1 stable, the stand-in frontend pod, then v2's canary at its only step."""
    create(k8s, namespace, clipper_app("echo", ["echo"], latencySLOMillis=SLO_MS))
    start_model(k8s, namespace, proc, name="echo", rollout=CANARY)
    frontend_stand_in(k8s, namespace, "echo", fe.http_port)
    swap(k8s, namespace, "v2", model="echo")
    wait_for_traffic(k8s, namespace, "echo", "v1=50 v2=50", "canary at 50%", proc)


def analysis(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = (obj.get("status") or {}).get("analysis") or {}
    return found


def columns(printed: str) -> dict[str, str]:
    """``kubectl get``'s first row by column name (cells are cut at the header's offsets)."""
    header, row = printed.splitlines()[:2]
    names = header.split()
    starts = [header.index(name) for name in names]
    ends = [*starts[1:], len(row) + 1]
    return {n: row[a:b].strip() for n, a, b in zip(names, starts, ends, strict=True)}


def send(fe: FrontendProcess, queries: int) -> None:
    """``queries`` predictions, one after another."""
    body = json.dumps({"input": [1.0, 2.0]}).encode()
    for _ in range(queries):
        request = urllib.request.Request(
            f"{fe.url}/echo/predict", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200


def v2_queries(fe: FrontendProcess) -> int:
    """The queries the frontend has counted for v2 (``/v1/stats/versions``)."""
    with urllib.request.urlopen(f"{fe.url}/v1/stats/versions", timeout=30) as answer:
        doc = json.loads(answer.read())
    return sum(e["requests"] for e in doc["versions"] if e["version"] == "v2")


def load(fe: FrontendProcess, max_requests: int) -> LoadLoop:
    return LoadLoop(fe.url, "echo", [[1.0, 2.0]], threads=2, max_requests=max_requests).start()


def test_a_canary_slower_than_the_slo_is_rolled_back_by_the_latency_gate(
    k8s: ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tmp_path: Path,
    versions: list[ModelServer],
) -> None:
    with (
        frontend(tmp_path, versions) as fe,
        operator(operator_kubeconfig, namespace, tmp_path) as proc,
    ):
        canary_with_analysis(k8s, namespace, proc, fe)
        loop = load(fe, max_requests=5000)
        try:
            failed = wait_degraded(k8s, namespace, "echo", proc, timeout=120)
        finally:
            loop.stop()
        message = rollback_message(k8s, namespace, "echo")
        printed = k8s.kubectl("get", "mdep", "echo", "-n", namespace).stdout
    degraded = condition(failed, "Degraded")
    assert degraded["reason"] == "AnalysisFailed"
    assert "v2 failed its analysis at canary step 1: " in degraded["message"]
    assert "p99 latency: v2 " in message
    assert f"threshold {SLO_MS} ms (1 x the {SLO_MS} ms SLO)" in message
    assert failed["status"]["trafficSummary"] == "v1=100"
    found = analysis(failed)
    assert (found["version"], found["verdict"]) == ("v2", "Failed")
    assert found["samples"] >= CANARY["analysis"]["minSamples"]  # type: ignore[index]
    shown = columns(printed)
    assert shown["VERDICT"] == "Failed"
    assert int(shown["SAMPLES"]) == found["samples"]


def test_an_operator_restarted_mid_analysis_resumes_it_from_the_stored_baseline(
    k8s: ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tmp_path: Path,
    versions: list[ModelServer],
) -> None:
    with frontend(tmp_path, versions) as fe:
        first = OperatorProcess(operator_kubeconfig, namespace, tmp_path)
        try:
            canary_with_analysis(k8s, namespace, first, fe)
            send(fe, 16)  # about 8 of the 40 samples v2 needs: the analysis waits
            counted = v2_queries(fe)
            waiting = wait_for_object(
                k8s, namespace, MODELS, "echo",
                lambda o: analysis(o).get("verdict") == "Waiting"
                and analysis(o).get("samples") == counted,
                f"the analysis waiting with v2's {counted} samples", operator=first,
            )  # fmt: skip
            first.kill()
            killed = datetime.now(UTC)
        finally:
            first.stop()
        with operator(operator_kubeconfig, namespace, tmp_path) as second:

            def judged_again(obj: dict[str, Any]) -> bool:
                at = analysis(obj).get("judgedAt")
                return at is not None and datetime.fromisoformat(at) > killed

            resumed = wait_for_object(
                k8s, namespace, MODELS, "echo", judged_again, "the second operator judging",
                operator=second,
            )  # fmt: skip
            loop = load(fe, max_requests=5000)
            try:
                failed = wait_degraded(k8s, namespace, "echo", second, timeout=120)
            finally:
                loop.stop()
    # The second operator judges the same step against the first one's baseline (a
    # new baseline would have counted zero samples so far), then rolls v2 back.
    before, after = waiting["status"]["rollout"], resumed["status"]["rollout"]
    assert after["stepStartedAt"] == before["stepStartedAt"]
    assert after["baseline"] == before["baseline"]
    assert analysis(resumed)["samples"] == analysis(waiting)["samples"] > 0
    assert condition(failed, "Degraded")["reason"] == "AnalysisFailed"
    assert analysis(failed)["verdict"] == "Failed"
