"""``clipper run`` and a ClipperApp's ``spec.frontend.workers``.

Several worker processes need a selection state they all share (issue 15's rule):
with the memory backend ``clipper run`` refuses the app before starting anything,
with the same words ``kubectl apply`` would use (the CRD's CEL rule). With a
shared backend the run's frontend gets ``--workers N`` like any other
``spec.frontend`` knob (``clipper.common.frontend_args``).
"""

from __future__ import annotations

from pathlib import Path

from clipper.testing.local import clipper_app, model_deployment, write_manifests
from clipper.testing.processes import ClipperProcess

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
