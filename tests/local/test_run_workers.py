"""``clipper run`` and a ClipperApp's ``spec.frontend.workers``.

Several worker processes need a selection state they all share (issue 15's rule):
with the memory backend ``clipper run`` refuses the app before starting anything,
with the same words ``kubectl apply`` would use (the CRD's CEL rule). With a
shared backend the run's frontend gets ``--workers N`` like any other
``spec.frontend`` knob (``clipper.common.frontend_args``).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from clipper.testing.frontend import WORKER_STARTED, worker_running
from clipper.testing.local import LocalRun, clipper_app, model_deployment, write_manifests
from clipper.testing.processes import ClipperProcess, wait_for
from clipper.testing.redis_server import RedisServer
from clipper.testing.timeouts import scaled

IDENTITY = "clipper.testing.functions:identity"


def test_a_run_refuses_several_workers_without_a_shared_state(tmp_path: Path) -> None:
    write_manifests(
        tmp_path / "app.yaml",
        clipper_app("echo", ["echo"], frontend={"workers": 2}),
        model_deployment("echo", "v1", "python", IDENTITY),
    )
    run = ClipperProcess(
        ["run", "-f", str(tmp_path)], env={"CLIPPER_CACHE_DIR": str(tmp_path / "cache")}
    )
    try:
        assert run.wait(timeout=60) == 1
    finally:
        run.stop()
    assert (
        "ClipperApp/echo: spec.frontend.workers: frontend.workers above 1 needs state.backend redis"
    ) in run.logs()


def readyz(url: str) -> dict:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=scaled(5)) as answer:
            return dict(json.loads(answer.read()))
    except OSError:  # 503 included: not ready yet
        return {}


def test_a_run_serves_through_the_workers_its_app_asks_for(
    tmp_path: Path, redis: RedisServer
) -> None:
    state = {"backend": "redis", "url": redis.url}
    write_manifests(
        tmp_path / "app.yaml",
        clipper_app("echo", ["echo"], latencySLOMillis=1000, frontend={"workers": 2}, state=state),
        model_deployment("echo", "v1", "python", IDENTITY),
    )
    with LocalRun([tmp_path], tmp_path / "cache") as run:
        run.wait_serving()
        wait_for(lambda: readyz(run.url).get("ready") is True, what="both workers ready")
        assert set(readyz(run.url)["workers"]) == {"0", "1"}
        request = urllib.request.Request(
            f"{run.url}/echo/predict",
            json.dumps({"input": [1.0, 2.0]}).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=scaled(30)) as answer:
            assert json.loads(answer.read())["output"] == [1.0, 2.0]
        assert "frontend supervisor: 2 workers" in run.logs()
        workers = [int(pid) for _, pid in WORKER_STARTED.findall(run.logs())]
        assert len(workers) == 2
    # The run waits for its frontend, which waits for its workers: none outlives it.
    assert not any(map(worker_running, workers)), run.logs()
