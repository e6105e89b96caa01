"""``clipper run`` end to end: one real run serves several apps; every test talks to it.

The run serves three apps from one folder of manifests: ``lr`` (the digits
logistic regression alone: exact predictions over every protocol), ``digits``
(the logistic regression and a random forest: feedback moves the selection
weights) and ``echo`` (a python identity model: version swaps, rollbacks and
edits under load). Each test reads the state it starts from (the stable version
of ``echo``, say) instead of assuming an order, so any one of them runs alone.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import yaml

from clipper.testing.frontend import metric
from clipper.testing.local import (
    LoadLoop,
    LocalRun,
    alive,
    clipper_app,
    deployment,
    model_deployment,
    traffic,
    write_manifests,
)
from clipper.testing.models import DigitsModels, digits, digits_batch
from clipper.testing.processes import free_port, wait_for
from clipper.testing.timeouts import scaled

ROLLOUT = {"drainSeconds": 1, "progressDeadlineSeconds": 60}
CANARY = {
    **ROLLOUT,
    "strategy": "Canary",
    "steps": [{"weight": 25, "pauseSeconds": 1}, {"weight": 75, "pauseSeconds": 1}],
}
IDENTITY = "clipper.testing.functions:identity"
# A generous objective: a query answered with the default would count as a failure,
# and this shared 2-core machine must not turn CPU contention into one.
SLO_MS = 1000


def echo(version: str, **spec: Any) -> dict[str, Any]:
    return model_deployment("echo", version, "python", IDENTITY, rollout=CANARY, **spec)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory, digits_models: DigitsModels) -> Path:
    folder = tmp_path_factory.mktemp("run-manifests")
    # A ClipperApp's service ports are part of the manifest (1..65535, as in a cluster),
    # so local mode cannot be asked for port 0: these are picked free just before.
    service = {"httpPort": free_port(), "grpcPort": free_port()}
    sklearn = {"threads": 1, "rollout": ROLLOUT}
    write_manifests(
        folder / "apps.yaml",
        clipper_app("lr", ["digits-lr"], frontend={"service": service}),
        clipper_app("digits", ["digits-lr", "digits-forest"], latencySLOMillis=SLO_MS),
        clipper_app("echo", ["echo"], latencySLOMillis=SLO_MS, cache={"enabled": False}),
    )
    write_manifests(
        folder / "models.yaml",
        model_deployment(
            "digits-lr", "v1", "sklearn", str(digits_models.logistic_regression), **sklearn
        ),
        model_deployment(
            "digits-forest", "v1", "sklearn", str(digits_models.random_forest), **sklearn
        ),
    )
    write_manifests(folder / "echo.yaml", echo("v1"))
    return folder


@pytest.fixture(scope="module")
def run(manifests: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    cache = tmp_path_factory.mktemp("run-cache")
    with LocalRun([manifests], cache) as started:
        started.wait_serving()
        yield started


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=scaled(30)) as answer:
        loaded: dict[str, Any] = json.loads(answer.read())
        return loaded


def stable(run: LocalRun, name: str) -> str:
    return str(deployment(run.status(), name)["status"]["stableVersion"])


# --- serving -------------------------------------------------------------------------


def test_banner_prints_the_endpoints(run: LocalRun) -> None:
    logs = run.logs()
    assert f"REST     {run.url}/lr/predict" in logs
    assert f"gRPC     {run.grpc_address}" in logs


def test_predicts_over_the_clipper_rest_api(run: LocalRun, digits_models: DigitsModels) -> None:
    pixels = digits_batch(8, offset=100)
    expected = joblib.load(digits_models.logistic_regression).predict(pixels)
    single = post(f"{run.url}/lr/predict", {"input": pixels[0].tolist()})
    assert (single["output"], single["default"]) == (expected[0], False)
    assert single["models"] == ["digits-lr"]
    batch = post(f"{run.url}/lr/predict", {"input_batch": pixels.tolist()})
    assert [p["output"] for p in batch["batch_predictions"]] == expected.tolist()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_predicts_over_oip_with_tritonclient(
    run: LocalRun, digits_models: DigitsModels, protocol: str
) -> None:
    import importlib

    triton = importlib.import_module(f"tritonclient.{protocol}")
    url = run.url.removeprefix("http://") if protocol == "http" else run.grpc_address
    client = triton.InferenceServerClient(url=url)
    try:
        assert client.is_model_ready("lr")
        pixels = digits_batch(5, offset=300)
        tensor = triton.InferInput("input", list(pixels.shape), "FP64")
        tensor.set_data_from_numpy(pixels)
        result = client.infer("lr", inputs=[tensor])
        expected = joblib.load(digits_models.logistic_regression).predict(pixels)
        np.testing.assert_array_equal(result.as_numpy("output"), expected)
    finally:
        client.close()


def test_feedback_moves_the_selection_weights(run: LocalRun) -> None:
    def weights() -> dict[str, float]:
        app = next(a for a in run.status()["apps"] if a["name"] == "digits")
        return dict(app["weights"])

    before = weights()
    assert set(before) == {"digits-lr", "digits-forest"}
    pixels, labels = digits()
    # Wrong labels make every answer a loss: each model drawn loses weight, and the
    # weights stop being what they were.
    for row, label in zip(pixels[:40], labels[:40], strict=True):
        answer = post(f"{run.url}/digits/predict", {"input": row.tolist()})
        wrong = int(label + 1) % 10
        feedback = post(
            f"{run.url}/digits/feedback", {"query_id": answer["query_id"], "label": wrong}
        )
        assert set(feedback["weights"]) == set(before)
    after = weights()
    assert after != before
    assert sum(after.values()) == pytest.approx(1.0)
    assert metric(_metrics(run), "clipper_frontend_feedback_total", app="digits") == 40


def _metrics(run: LocalRun) -> str:
    with urllib.request.urlopen(f"{run.url}/metrics", timeout=scaled(10)) as answer:
        return str(answer.read().decode())


def test_status_shows_apps_versions_traffic_and_weights(run: LocalRun) -> None:
    shown = run.command("status", "--pid", str(run.pid))
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert f"endpoint: REST {run.url}  gRPC {run.grpc_address}  (ready)" in text
    for expected in ("digits-forest", "digits-lr", "Serving", "100%", "exp3"):
        assert expected in text
    raw = json.loads(run.command("status", "--json", "--pid", str(run.pid)).stdout)
    lr = deployment(raw, "digits-lr")
    assert lr["status"]["stableVersion"] == "v1"
    assert lr["generation"] == 1
    conditions = {c["type"]: c["status"] for c in lr["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert {p["state"] for p in raw["processes"]} == {"ready"}


# --- changes under load --------------------------------------------------------------


def test_version_swap_under_load_fails_no_request(run: LocalRun, tmp_path: Path) -> None:
    old = stable(run, "echo")
    new = f"{old}-next"
    old_pids = [p["pid"] for p in run.status()["processes"] if f"echo@{old}#" in p["name"]]
    load = LoadLoop(run.url, "echo", digits_batch(64).tolist(), threads=4, max_requests=50_000)
    load.start()
    try:
        applied = run.apply(write_manifests(tmp_path / "echo.yaml", echo(new)))
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.strip() == "modeldeployment.clipper.dev/echo configured"
        started = run.status()
        assert deployment(started, "echo")["generation"] >= 2
        done = run.wait_status(
            lambda s: _swapped(s, old, new),
            timeout=90,
            what=f"echo swapped from {old} to {new}",
        )
    finally:
        result = load.stop()
    swap_s = _parse(_event(done, "Retained")["time"]) - _parse(
        _event(done, "RolloutStarted")["time"]
    )
    print(
        f"\nversion swap {old} -> {new} (Canary 25%/75%, 1 s pauses, 1 s drain): "
        f"{result.requests} requests in {result.seconds:.1f}s, {result.failures} failed; "
        f"the swap took {swap_s:.2f}s from RolloutStarted to the old version retained"
    )
    assert result.failures == 0, result.examples
    assert result.requests > 200
    served = metric(_metrics(run), "clipper_frontend_batch_size_count", model="echo", version=new)
    assert served > 0
    assert old_pids
    wait_for(lambda: not any(alive(pid) for pid in old_pids), timeout=60, what="old replicas gone")


def test_changed_frontend_settings_replace_the_frontend_under_load_failing_no_request(
    run: LocalRun, manifests: Path, tmp_path: Path
) -> None:
    old = _ready_pid(run, "frontend")
    assert old is not None
    # The first app's spec.frontend configures the run's one frontend.
    apps = list(yaml.safe_load_all((manifests / "apps.yaml").read_text()))
    first = next(app for app in apps if app and app["metadata"]["name"] == "lr")
    capacity = 4096 + old % 1000  # differs from whatever an earlier run of this test set
    first["spec"]["frontend"].update(queueCapacity=capacity, drainDelaySeconds=1)
    load = LoadLoop(run.url, "echo", digits_batch(64).tolist(), threads=4, max_requests=50_000)
    load.start()
    try:
        wait_for(lambda: load.result.requests > 100, timeout=60, what="load flowing")
        applied = run.apply(write_manifests(tmp_path / "apps.yaml", first))
        assert applied.returncode == 0, applied.stderr
        replaced = run.wait_status(
            lambda s: _pid_of(s, "frontend") not in (None, old), timeout=90, what="new frontend"
        )
        wait_for(lambda: not alive(old), timeout=60, what="the old frontend drained and gone")
        after = load.result.requests
        wait_for(lambda: load.result.requests > after + 100, timeout=60, what="load after it")
    finally:
        result = load.stop()
    print(
        f"\nfrontend replaced under load: {result.requests} requests in "
        f"{result.seconds:.1f}s, {result.failures} failed"
    )
    assert result.failures == 0, result.examples
    # Its pid from the status that showed it ready: a later status may show it "live"
    # only, for a moment (one health probe that timed out under load), and no pid.
    new = _pid_of(replaced, "frontend")
    cmdline = Path(f"/proc/{new}/cmdline").read_bytes().split(b"\0")
    assert cmdline[cmdline.index(b"--queue-capacity") + 1] == str(capacity).encode()
    assert "the frontend was replaced" in run.logs()


def _routing_rejected(status: dict[str, Any], app: str) -> dict[str, Any]:
    entry = next(a for a in status["apps"] if a["name"] == app)
    found = [c for c in entry["status"]["conditions"] if c["type"] == "RoutingRejected"]
    return found[0] if found else {}


def test_a_spec_the_frontend_rejects_shows_in_status_and_the_old_table_serves(
    run: LocalRun, manifests: Path, tmp_path: Path
) -> None:
    apps = list(yaml.safe_load_all((manifests / "apps.yaml").read_text()))
    digits_app = next(app for app in apps if app and app["metadata"]["name"] == "digits")
    # Valid by the CRD, but the fixed policy's model must be one of the app's models.
    bad = {**digits_app, "spec": {**digits_app["spec"]}}
    bad["spec"]["selectionPolicy"] = {"type": "fixed", "parameters": {"model": "nope"}}
    row = digits_batch(1)[0].tolist()
    try:
        applied = run.apply(write_manifests(tmp_path / "bad.yaml", bad))
        assert applied.returncode == 0, applied.stderr
        rejected = run.wait_status(
            lambda s: _routing_rejected(s, "digits").get("status") == "True",
            timeout=60,
            what="RoutingRejected on the app",
        )
        assert "'nope'" in _routing_rejected(rejected, "digits")["message"]
        shown = run.command("status")
        assert "rejected by the frontend" in shown.stdout
        assert "'nope'" in shown.stdout
        assert post(f"{run.url}/digits/predict", {"input": row})["default"] is False
    finally:
        restored = run.apply(write_manifests(tmp_path / "good.yaml", digits_app))
        assert restored.returncode == 0, restored.stderr
    run.wait_status(
        lambda s: _routing_rejected(s, "digits").get("status") == "False",
        timeout=60,
        what="RoutingRejected False once the spec is fixed",
    )


def _swapped(status: dict[str, Any], old: str, new: str) -> bool:
    versions = {v["version"]: v["phase"] for v in deployment(status, "echo")["status"]["versions"]}
    return traffic(status, "echo") == {new: 100} and versions.get(old) == "Retained"


def _event(status: dict[str, Any], reason: str) -> dict[str, Any]:
    mine = [e for e in status["events"] if e["object"] == "ModelDeployment/echo"]
    return [e for e in mine if e["reason"] == reason][-1]


def _parse(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def test_a_version_that_cannot_start_is_rolled_back(run: LocalRun, tmp_path: Path) -> None:
    old = stable(run, "echo")
    corrupt = tmp_path / "corrupt.joblib"
    corrupt.write_bytes(b"this is not a joblib file")
    broken = model_deployment("echo", f"{old}-broken", "sklearn", str(corrupt), rollout=CANARY)
    load = LoadLoop(run.url, "echo", digits_batch(64).tolist(), threads=2, max_requests=20_000)
    load.start()
    try:
        assert run.apply(write_manifests(tmp_path / "broken.yaml", broken)).returncode == 0
        failed = run.wait_status(
            lambda s: any(
                v["phase"] == "Failed" for v in deployment(s, "echo")["status"]["versions"]
            ),
            timeout=60,
            what="the broken version failed",
        )
    finally:
        result = load.stop()
    status = deployment(failed, "echo")["status"]
    version = next(v for v in status["versions"] if v["phase"] == "Failed")
    assert version["reason"] == "VersionFailing"
    assert "exited with code 1" in version["message"]
    assert "failed to load model 'echo'" in version["message"]
    assert traffic(failed, "echo") == {old: 100}
    assert status["stableVersion"] == old
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    assert result.failures == 0, result.examples
    answer = post(f"{run.url}/echo/predict", {"input": digits_batch(1)[0].tolist()})
    assert answer["default"] is False


def _degraded(status: dict[str, Any], name: str) -> dict[str, Any]:
    conditions = deployment(status, name)["status"]["conditions"]
    return next(c for c in conditions if c["type"] == "Degraded")


def test_a_new_template_under_the_serving_version_is_refused(run: LocalRun, tmp_path: Path) -> None:
    old = stable(run, "echo")
    pids = sorted(p["pid"] for p in run.status()["processes"] if f"echo@{old}#" in p["name"])
    changed = write_manifests(tmp_path / "changed.yaml", echo(old, threads=2))
    assert run.apply(changed).returncode == 0
    refused = run.wait_status(
        lambda s: _degraded(s, "echo")["reason"] == "VersionImmutable",
        timeout=60,
        what="the changed template refused",
    )
    message = _degraded(refused, "echo")["message"]
    assert message.startswith(f"{old} already exists with a different template (threads:")
    assert "versions are immutable" in message
    assert traffic(refused, "echo") == {old: 100}
    shown = run.command("status", "--pid", str(run.pid)).stdout
    assert f"echo: VersionImmutable: {old} already exists" in shown
    wait_log(run, f"ModelDeployment/echo: VersionImmutable: {old} already exists")
    # Nothing restarted; one Warning however many reconciles.
    after = run.status()
    assert sorted(p["pid"] for p in after["processes"] if f"echo@{old}#" in p["name"]) == pids
    said = [e for e in after["events"] if e["reason"] == "VersionImmutable"]
    assert [e["type"] for e in said][-1:] == ["Warning"]
    assert len([e for e in said if e["message"] == message]) == 1
    # Restoring the template clears it.
    assert run.apply(write_manifests(tmp_path / "restored.yaml", echo(old))).returncode == 0
    run.wait_status(
        lambda s: _degraded(s, "echo")["status"] == "False", timeout=60, what="the refusal cleared"
    )


def test_a_saved_file_is_applied_and_a_bad_edit_is_ignored(run: LocalRun, manifests: Path) -> None:
    old = stable(run, "echo")
    bad = echo(f"{old}-edit")
    bad["spec"]["replicaz"] = 2
    write_manifests(manifests / "echo.yaml", bad)
    wait_log(run, "ignored the change to")
    assert "echo.yaml: ModelDeployment/echo: spec.replicaz: unknown field" in run.logs()
    assert stable(run, "echo") == old
    write_manifests(manifests / "echo.yaml", echo(f"{old}-edit"))
    run.wait_status(
        lambda s: traffic(s, "echo") == {f"{old}-edit": 100}, timeout=90, what="edit rolled out"
    )


def wait_log(run: LocalRun, text: str, timeout: float = 30.0) -> None:
    wait_for(lambda: text in run.logs(), timeout=timeout, what=f"{text!r} in the log")


def test_apply_of_an_invalid_manifest_changes_nothing(run: LocalRun, tmp_path: Path) -> None:
    before = deployment(run.status(), "digits-lr")
    bad = model_deployment("digits-lr", "v9", "tensorflow", "/nowhere/model.pb")
    refused = run.apply(write_manifests(tmp_path / "bad.yaml", bad))
    assert refused.returncode == 1
    assert "bad.yaml: ModelDeployment/digits-lr: spec.framework:" in refused.stderr
    missing = model_deployment("digits-lr", "v9", "sklearn", str(tmp_path / "missing.joblib"))
    refused = run.apply(write_manifests(tmp_path / "missing.yaml", missing))
    assert refused.returncode == 1
    assert "missing.yaml: ModelDeployment/digits-lr: spec.modelUri:" in refused.stderr
    assert "missing.joblib does not exist" in refused.stderr
    after = deployment(run.status(), "digits-lr")
    assert (after["version"], after["generation"]) == (before["version"], before["generation"])


# --- crashes while serving -----------------------------------------------------------


def _pid_of(status: dict[str, Any], prefix: str) -> int | None:
    found = [p for p in status["processes"] if p["name"].startswith(prefix)]
    return found[0]["pid"] if found and found[0]["state"] == "ready" else None


def _ready_pid(run: LocalRun, prefix: str) -> int | None:
    """The pid of the process named ``prefix...`` once the status shows it ready: one
    status may show it "live" only (a health probe that timed out under load)."""
    status = run.wait_status(lambda s: _pid_of(s, prefix) is not None, what=f"{prefix} ready")
    return _pid_of(status, prefix)


def test_a_crashed_model_server_is_restarted(run: LocalRun) -> None:
    victim = _ready_pid(run, "model digits-forest@")
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    run.wait_status(
        lambda s: _pid_of(s, "model digits-forest@") not in (None, victim),
        timeout=60,
        what="digits-forest restarted",
    )
    wait_log(run, "was killed by SIGKILL; restarting it in 1s")
    # The frontend learns the new replica's port from the rewritten routes file and
    # its first health check; until then a query routed to digits-forest gets the
    # default. Once it has, answers are real predictions again.
    row = digits_batch(1)[0].tolist()
    wait_for(
        lambda: post(f"{run.url}/digits/predict", {"input": row})["default"] is False,
        timeout=30,
        what="a real prediction after the restart",
    )


def test_a_crashed_frontend_is_restarted_on_the_same_ports(run: LocalRun) -> None:
    victim = _ready_pid(run, "frontend")
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    run.wait_status(
        lambda s: _pid_of(s, "frontend") not in (None, victim), timeout=60, what="new frontend"
    )
    answer = post(f"{run.url}/lr/predict", {"input": digits_batch(1)[0].tolist()})
    assert answer["default"] is False


def test_a_request_sent_while_the_frontend_restarts_waits_instead_of_being_refused(
    run: LocalRun,
) -> None:
    victim = _ready_pid(run, "frontend")
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not alive(victim), timeout=30, what="the frontend gone")
    # No frontend listens now; the run's REST socket holds the connection until the
    # restarted frontend accepts it (before, this was ConnectionRefusedError).
    request = urllib.request.Request(
        f"{run.url}/lr/predict",
        json.dumps({"input": digits_batch(1)[0].tolist()}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=scaled(60)) as answer:
        assert answer.status == 200
    run.wait_status(
        lambda s: _pid_of(s, "frontend") not in (None, victim), timeout=60, what="new frontend"
    )
