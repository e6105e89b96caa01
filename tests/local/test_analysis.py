"""A canary judged on live traffic in ``clipper run``: the latency gate rolls a slow
version back, and the loss gate one that answers worse on the labels callers send.

v1 is the identity; v2 is the identity after a sleep longer than the app's SLO.
The canary's only step holds for far longer than the test runs, so nothing but the
analysis can end it: the run reads its frontend's per-version counters, judges
v2 against v1 on the queries each answered since the step began, and rolls v2
back with the numbers in its Degraded condition, its event and ``clipper status``.
No timing is asserted: the test waits, bounded, for the status to say so.

For the loss gate, a strong digits forest is stable and a weak one the canary,
both as fast as each other; the test sends every answer's true label by query id,
and only the labels can tell the versions apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clipper.testing.graded_models import train_forests
from clipper.testing.local import (
    LoadLoop,
    LocalRun,
    clipper_app,
    deployment,
    label_until,
    model_deployment,
    traffic,
    write_manifests,
)

SLO_MS = 200
ANALYSIS = {"minSamples": 10, "intervalSeconds": 1, "warmupSeconds": 1, "failureSeconds": 2}
CANARY = {
    "strategy": "Canary",
    "steps": [{"weight": 50, "pauseSeconds": 3600}],
    "drainSeconds": 1,
    "progressDeadlineSeconds": 120,
    "analysis": ANALYSIS,
}


def echo(version: str, function: str, **spec: Any) -> dict[str, Any]:
    uri = f"clipper.testing.functions:{function}"
    return model_deployment("echo", version, "python", uri, rollout=CANARY, **spec)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[tuple[LocalRun, Path]]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    write_manifests(
        folder / "app.yaml",
        clipper_app("echo", ["echo"], latencySLOMillis=SLO_MS, cache={"enabled": False}),
    )
    write_manifests(folder / "echo.yaml", echo("v1", "identity"))
    with LocalRun([folder], tmp_path / "cache") as started:
        started.wait_serving()
        yield started, folder


def rolled_back(status: dict[str, Any]) -> bool:
    versions = deployment(status, "echo")["status"].get("versions", [])
    return any(v["version"] == "v2" and v["phase"] == "Failed" for v in versions)


def test_a_canary_slower_than_the_slo_is_rolled_back_by_the_latency_gate(
    run: tuple[LocalRun, Path],
) -> None:
    local, folder = run
    slow = echo("v2", "slow_identity", env=[{"name": "CLIPPER_TESTING_DELAY_S", "value": "0.6"}])
    write_manifests(folder / "echo.yaml", slow)
    local.apply(folder / "echo.yaml")
    load = LoadLoop(local.url, "echo", [[1.0, 2.0]], threads=2, max_seconds=150).start()
    try:
        state = local.wait_status(rolled_back, timeout=150, what="v2 rolled back")
    finally:
        load.stop()
    st = deployment(state, "echo")["status"]
    assert traffic(local.status(), "echo") == {"v1": 100}
    degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "AnalysisFailed")
    assert "v2 failed its analysis at canary step 1: " in degraded["message"]
    assert "p99 latency: v2 " in degraded["message"]
    assert f"threshold {SLO_MS} ms (1 x the {SLO_MS} ms SLO)" in degraded["message"]
    analysis = st["analysis"]
    assert (analysis["version"], analysis["verdict"]) == ("v2", "Failed")
    assert analysis["samples"] >= ANALYSIS["minSamples"]
    numbers = {v["version"]: v for v in analysis["versions"]}
    assert numbers["v2"]["p99Millis"] > SLO_MS
    assert numbers["v1"]["requests"] > 0  # the stable version's numbers, for comparison
    events = [e for e in local.status()["events"] if e["reason"] == "RolledBack"]
    assert "p99 latency: v2" in events[-1]["message"]
    shown = local.command("status", "--pid", str(local.pid)).stdout
    assert "rollout analysis" in shown
    assert "Failed" in shown


def test_a_canary_worse_on_labels_is_rolled_back_by_the_loss_gate(tmp_path: Path) -> None:
    (tmp_path / "forests").mkdir()
    forests = train_forests(tmp_path / "forests")
    rollout = {**CANARY, "analysis": {**ANALYSIS, "minLabels": 20, "maxLossIncrease": 0.05}}

    def forest(version: str, grade: str) -> dict[str, Any]:
        path = str(forests[grade])
        return model_deployment(
            "digits-forest", version, "sklearn", path, threads=1, rollout=rollout
        )

    folder = tmp_path / "manifests"
    folder.mkdir()
    app = clipper_app("digits", ["digits-forest"], latencySLOMillis=1000, cache={"enabled": False})
    write_manifests(folder / "app.yaml", app)
    write_manifests(folder / "forest.yaml", forest("v1", "v2"))  # the strong forest is stable
    with LocalRun([folder], tmp_path / "cache") as local:
        local.wait_serving()
        write_manifests(folder / "forest.yaml", forest("v2", "v3"))  # the weak one, canaried
        local.apply(folder / "forest.yaml")

        def failed(status: dict[str, Any]) -> bool:
            versions = deployment(status, "digits-forest")["status"].get("versions", [])
            return any(v["version"] == "v2" and v["phase"] == "Failed" for v in versions)

        label_until(local, failed, max_queries=2000)
        state = local.status()
    st = deployment(state, "digits-forest")["status"]
    assert traffic(state, "digits-forest") == {"v1": 100}
    degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "AnalysisFailed")
    assert "loss: v2 " in degraded["message"], degraded["message"]
    assert "threshold +0.05" in degraded["message"]
    numbers = {v["version"]: v for v in st["analysis"]["versions"]}
    assert min(numbers["v1"]["labels"], numbers["v2"]["labels"]) >= 20
    assert numbers["v2"]["loss"] > numbers["v1"]["loss"] + 0.05
