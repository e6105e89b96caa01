"""The runner's small parts: ports, the routes file, the watch filter, run folders,
crash reasons, and how a version becomes a model-server command line."""

from __future__ import annotations

import collections
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import watchfiles

from clipper.common import api, manifests
from clipper.common.errors import ConfigError
from clipper.common.routing import AppConfig, ModelRoute, RoutingTable, VersionRoute
from clipper.frontend.routing.discovery.static import load_routes
from clipper.local import ports
from clipper.local.process import _last_error
from clipper.local.routes_file import RoutesFile
from clipper.local.runner import launch
from clipper.local.state import RunDir, RunInfo, live_runs
from clipper.local.watch import ManifestFilter
from clipper.testing.local import clipper_app, model_deployment, write_manifests


def app(name: str, http: int | None = None, grpc: int | None = None) -> api.ClipperApp:
    service = {k: v for k, v in (("httpPort", http), ("grpcPort", grpc)) if v is not None}
    spec = {"models": ["m"], "frontend": {"service": service}}
    return api.ClipperApp.model_validate({"metadata": {"name": name}, "spec": spec})


def test_ports_come_from_the_first_app_unless_a_flag_says() -> None:
    apps = [app("first", 9000, 9001), app("second", 7000), app("third")]
    http, grpc = ports.frontend_ports(apps, None, 9101)
    assert http == ports.PortChoice(9000, "ClipperApp/first spec.frontend.service.httpPort")
    assert grpc == ports.PortChoice(9101, "--grpc-port")
    assert ports.frontend_ports([], None, None)[0].port == 8080
    assert ports.ignored_ports(apps) == ["ClipperApp/second"]  # "third" takes the defaults
    assert ports.ignored_ports(apps, among={"third"}) == []
    with pytest.raises(ConfigError, match="both ask for 9000"):
        ports.frontend_ports(apps, None, 9000)


def test_a_taken_port_is_reported_with_who_asked_for_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
            ports.check_free("127.0.0.1", ports.PortChoice(port, "--http-port"))
    ports.check_free("127.0.0.1", ports.PortChoice(port, "--http-port"))  # free again
    ports.check_free("127.0.0.1", ports.PortChoice(0, "--http-port"))


def test_the_routes_file_is_replaced_whole_and_reads_back_as_the_frontend_reads_it(
    tmp_path: Path,
) -> None:
    routes = RoutesFile(tmp_path / "routes.yaml")
    version = VersionRoute(version="v2", weight=25, replicas=("127.0.0.1:5000",))
    table = RoutingTable(
        apps={"a": AppConfig(name="a", models=(ModelRoute(name="m", versions=(version,)),))}
    )
    assert routes.write(table)
    assert not routes.write(table)  # unchanged: not written again
    assert load_routes(routes.path) == table
    assert sorted(p.name for p in tmp_path.iterdir()) == ["routes.yaml"]


def test_the_watch_takes_manifests_only(tmp_path: Path) -> None:
    folder, single = tmp_path / "apps", tmp_path / "one.yaml"
    folder.mkdir()
    accept = ManifestFilter([folder, single])
    change = watchfiles.Change.modified
    assert accept(change, str(folder / "models.yaml"))
    assert accept(change, str(folder / "app.json"))
    assert accept(change, str(single))
    assert not accept(change, str(tmp_path / "two.yaml"))  # beside -f FILE, not named
    assert not accept(change, str(folder / ".models.yaml.swp"))
    assert not accept(change, str(folder / "models" / "forest.joblib"))
    assert not accept(change, str(folder / "train.py"))
    assert accept.roots == {folder, tmp_path}


def test_run_folders_are_private_and_dead_runs_are_cleared(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    info = RunInfo(
        pid=os.getpid(), control_url="http://127.0.0.1:1", token="t", manifests=[], started_at=0
    )
    run_dir.publish(info)
    assert stat.S_IMODE(run_dir.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(run_dir.info_path.stat().st_mode) == 0o600
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / finished.stdout.strip()
    dead.mkdir()
    (dead / "run.json").write_text(info.model_copy(update={"pid": 1}).model_dump_json())
    assert [run.pid for run in live_runs(tmp_path)] == [os.getpid()]
    assert not dead.exists()
    run_dir.remove()
    assert live_runs(tmp_path) == []


def test_a_crash_is_explained_by_its_own_error_not_by_grpc_noise() -> None:
    lines = collections.deque(
        [
            "2026-01-01 10:00:00,000 INFO clipper.model_wrappers.server [-] listening on x:1",
            "2026-01-01 10:00:00,100 ERROR clipper.model_wrappers.server [-] failed to load",
            "2026-01-01 10:00:00,101 ERROR grpc._cython.cygrpc [-] Exception not handled",
            "asyncio.exceptions.CancelledError",
        ]
    )
    assert _last_error(lines) == "failed to load"
    traceback = collections.deque(["Traceback (most recent call last):", "ValueError: bad"])
    assert _last_error(traceback) == "ValueError: bad"
    json_line = '{"level": "ERROR", "logger": "clipper.x", "message": "boom"}'
    assert _last_error(collections.deque([json_line, "bye"])) == "boom"
    assert _last_error(collections.deque(["INFO all is well"])) == ""


def test_a_version_runs_as_a_model_server_with_paths_resolved(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "lr.joblib").write_bytes(b"")
    write_manifests(
        tmp_path / "app.yaml",
        clipper_app("app", ["lr"]),
        model_deployment(
            "lr", "v3", "sklearn", "models/lr.joblib", modelName="digits", threads=1,
            env=[{"name": "OMP_NUM_THREADS", "value": "1"}],
        ),
    )  # fmt: skip
    found = manifests.load(tmp_path)
    (lr,) = found.deployments
    run = launch(lr, "v3", lr.spec.template(), found.source(lr).base_dir, ("--log-level", "INFO"))
    args = list(run.args)
    assert args[:4] == ["--log-level", "INFO", "model", "serve"]
    assert args[args.index("--uri") + 1] == str(tmp_path / "models" / "lr.joblib")
    assert args[args.index("--name") + 1] == "digits"
    assert args[args.index("--version") + 1] == "v3"
    assert args[args.index("--port") + 1] == "0"
    env = dict(run.env)
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path)
    assert run.label(1) == "model lr@v3#1"
