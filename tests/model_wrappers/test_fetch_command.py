"""``clipper model fetch`` (the init container) and ``serve`` of a remote URI, as processes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from clipper.testing.file_server import serve_directory
from clipper.testing.model_servers import serve_command
from clipper.testing.models import DigitsModels
from clipper.testing.processes import ClipperProcess, refusing_port


def run(args: list[str], log_dir: Path) -> tuple[int, str]:
    process = ClipperProcess(args, log_dir=log_dir)
    try:
        code = process.wait(timeout=120)
    finally:
        process.stop()
    return code, process.logs()


def test_fetch_writes_the_verified_model_and_exits_0(
    tmp_path: Path, digits_models: DigitsModels
) -> None:
    model = digits_models.logistic_regression
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    dest = tmp_path / "store" / "model.joblib"
    with serve_directory(model.parent) as web:
        uri = f"{web}/{model.name}#sha256={digest}"
        code, logs = run(["model", "fetch", "--uri", uri, "--dest", str(dest)], tmp_path)
    assert code == 0, logs
    assert dest.read_bytes() == model.read_bytes()
    assert f"fetched {web}/{model.name} to {dest}" in logs


def test_fetch_of_a_uri_with_nothing_to_fetch_exits_2(tmp_path: Path) -> None:
    uri = "pvc://models/m.joblib"
    code, logs = run(["model", "fetch", "--uri", uri, "--dest", str(tmp_path / "m")], tmp_path)
    assert code == 2
    assert f"ERROR clipper.model_wrappers.cli [-] {uri}: nothing to fetch" in logs


def test_serve_of_a_remote_model_that_cannot_be_fetched_exits_1_with_the_cause(
    tmp_path: Path,
) -> None:
    with refusing_port() as port:
        uri = f"http://127.0.0.1:{port}/m.joblib"
        code, logs = run(serve_command("sklearn", "digits", uri=uri, metrics=False), tmp_path)
    assert code == 1
    last_error = [line for line in logs.splitlines() if " ERROR " in line][-1]
    assert f"fetching {uri}: " in last_error
    assert "refused" in last_error
