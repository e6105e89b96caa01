"""``clipper run`` starts and stops cleanly, and refuses bad input before starting anything.

Every process a run starts inherits its environment, so a test finds *all* of
them -- reported or not -- by the run's own ``CLIPPER_CACHE_DIR`` in
``/proc/*/environ``, and checks that none is left after the run ends, however it
ended: Ctrl-C (SIGINT), SIGTERM, or SIGKILL (the children then die with it,
through ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from clipper.testing.local import (
    LocalRun,
    clipper_app,
    model_deployment,
    processes_with_env,
    write_manifests,
)
from clipper.testing.processes import free_port, wait_for

IDENTITY = "clipper.testing.functions:identity"
SLOW = "clipper.testing.slow_loading:identity"


def echo_app(folder: Path, replicas: int = 1) -> Path:
    # A ClipperApp's service ports are part of the manifest (1..65535, as in a cluster),
    # so local mode cannot be asked for port 0: these are picked free just before.
    service = {"httpPort": free_port(), "grpcPort": free_port()}
    return write_manifests(
        folder / "echo.yaml",
        clipper_app("echo", ["echo"], frontend={"service": service}),
        model_deployment("echo", "v1", "python", IDENTITY, replicas=replicas),
    )


def children(run: LocalRun) -> list[int]:
    found = processes_with_env("CLIPPER_CACHE_DIR", str(run.cache_dir))
    return [pid for pid in found if pid != run.pid]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_every_child_and_exits_0(tmp_path: Path, signum: signal.Signals) -> None:
    with LocalRun([echo_app(tmp_path, replicas=2)], tmp_path / "cache") as run:
        run.wait_serving()
        reported = run.child_pids()
        assert len(reported) == 3  # the frontend and two model servers
        assert set(reported) <= set(children(run))
        run.process.signal(signum)
        assert run.process.wait(timeout=60) == 0
        assert children(run) == []
        assert not (tmp_path / "cache" / "run" / str(run.pid)).exists()
        assert "clipper run stopped" in run.logs()


def test_children_die_with_a_killed_runner(tmp_path: Path) -> None:
    with LocalRun([echo_app(tmp_path)], tmp_path / "cache") as run:
        run.wait_serving()
        # The frontend, the model server and the frontend's gRPC front.
        assert len(children(run)) == 3
        run.process.proc.kill()  # SIGKILL: no handler runs, no cleanup
        run.process.wait(timeout=10)
        wait_for(lambda: not children(run), timeout=60, what="children gone after SIGKILL")


def test_a_model_that_crashes_at_start_is_reported_and_nothing_hangs(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.joblib"
    corrupt.write_bytes(b"not a model")
    service = {"httpPort": free_port(), "grpcPort": free_port()}
    write_manifests(
        tmp_path / "app.yaml",
        clipper_app("digits", ["good", "broken"], frontend={"service": service}),
        model_deployment("good", "v1", "python", IDENTITY),
        model_deployment("broken", "v1", "sklearn", "corrupt.joblib"),
    )
    with LocalRun([tmp_path / "app.yaml"], tmp_path / "cache") as run:
        assert run.process.wait(timeout=120) == 1
        logs = run.logs()
        assert "clipper run cannot start:" in logs
        assert "app.yaml: ModelDeployment/broken: version v1 cannot start:" in logs
        assert "exited with code 1" in logs
        assert "failed to load model 'broken' version 'v1'" in logs
        assert children(run) == []


def test_invalid_manifests_fail_before_anything_starts(tmp_path: Path) -> None:
    service = {"httpPort": free_port(), "grpcPort": free_port()}
    unknown_field = model_deployment("typo", "v1", "python", IDENTITY, replicaz=2)
    wrong_type = model_deployment("wrong", "v1", "python", IDENTITY, replicas="two")
    no_version = model_deployment("unversioned", "v1", "python", IDENTITY)
    del no_version["spec"]["version"]
    write_manifests(
        tmp_path / "bad.yaml",
        clipper_app("app", ["typo"], frontend={"service": service}),
        unknown_field,
        wrong_type,
        no_version,
        model_deployment("tf", "v1", "tensorflow", "model.pb"),
        model_deployment("lost", "v1", "sklearn", "missing.joblib"),
    )
    with LocalRun([tmp_path], tmp_path / "cache") as run:
        assert run.process.wait(timeout=60) == 1
        logs = run.logs()
    for expected in (
        "bad.yaml: ModelDeployment/typo: spec.replicaz: unknown field; did you mean 'replicas'?",
        "bad.yaml: ModelDeployment/wrong: spec.replicas: 'two' is not of type 'integer'",
        "bad.yaml: ModelDeployment/unversioned: spec.version: required field is missing",
        "bad.yaml: ModelDeployment/tf: spec.framework: 'tensorflow' is not one of",
    ):
        assert expected in logs
    assert "[model" not in logs
    assert "[frontend]" not in logs
    assert not (tmp_path / "cache" / "run").exists()


def test_a_missing_model_file_fails_before_anything_starts(tmp_path: Path) -> None:
    service = {"httpPort": free_port(), "grpcPort": free_port()}
    write_manifests(
        tmp_path / "app.yaml",
        clipper_app("app", ["lost"], frontend={"service": service}),
        model_deployment("lost", "v1", "sklearn", "models/missing.joblib"),
    )
    with LocalRun([tmp_path], tmp_path / "cache") as run:
        assert run.process.wait(timeout=60) == 1
        logs = run.logs()
    where = "app.yaml: ModelDeployment/lost: spec.modelUri:"
    assert f"{where} {tmp_path}/models/missing.joblib does not exist" in logs
    assert "[model" not in logs


@pytest.mark.parametrize("flag", [False, True])
def test_a_port_in_use_is_named_with_who_asked_for_it(tmp_path: Path, flag: bool) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = {"httpPort": free_port(), "grpcPort": free_port() if flag else port}
        write_manifests(
            tmp_path / "app.yaml",
            clipper_app("app", ["echo"], frontend={"service": service}),
            model_deployment("echo", "v1", "python", IDENTITY),
        )
        args = ["--grpc-port", str(port)] if flag else []
        with LocalRun([tmp_path], tmp_path / "cache", args=args) as run:
            assert run.process.wait(timeout=60) == 1
            logs = run.logs()
    origin = "--grpc-port" if flag else "ClipperApp/app spec.frontend.service.grpcPort"
    assert f"port {port} on 127.0.0.1 is already in use (asked for by {origin})" in logs
    assert "[model" not in logs
    assert "[frontend]" not in logs


def test_ctrl_c_during_start_up_stops_everything(tmp_path: Path) -> None:
    service = {"httpPort": free_port(), "grpcPort": free_port()}
    slow = {"name": "CLIPPER_TESTING_IMPORT_DELAY_S", "value": "60"}  # loads for a minute
    write_manifests(
        tmp_path / "app.yaml",
        clipper_app("app", ["slow"], frontend={"service": service}),
        model_deployment("slow", "v1", "python", SLOW, env=[slow]),
    )
    with LocalRun([tmp_path], tmp_path / "cache") as run:
        wait_for(
            lambda: any(p["state"] == "starting" for p in run.status()["processes"][1:]),
            timeout=60,
            what="the model server loading",
        )
        run.process.signal(signal.SIGINT)
        assert run.process.wait(timeout=30) == 0
        assert "clipper run: serving" not in run.logs()
        assert children(run) == []
