"""``clipper run`` honours a ClipperApp's ``spec.frontend.workers``: the run's
frontend is a parent of that many workers sharing the run's ports."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from clipper.testing.local import LocalRun, clipper_app, model_deployment, write_manifests
from clipper.testing.processes import wait_for
from clipper.testing.timeouts import scaled

IDENTITY = "clipper.testing.functions:identity"


def readyz(url: str) -> dict:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=scaled(10)) as answer:
            return dict(json.loads(answer.read()))
    except OSError:
        return {}


def test_a_run_serves_through_the_workers_its_app_asks_for(tmp_path: Path) -> None:
    write_manifests(
        tmp_path / "app.yaml",
        clipper_app("echo", ["echo"], latencySLOMillis=1000, frontend={"workers": 2}),
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
