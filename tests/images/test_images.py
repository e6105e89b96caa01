"""The built images, checked for real: config, labels, contents, and serving.

These tests read the images that ``scripts/build-images.sh`` (``make images``)
built into the local Docker engine; ``make test-images`` builds them and runs
these tests. They are opt-in (``--images``): building the images cold takes many
minutes (a Debian base, GBs of CUDA wheels), more than the default ``make test``
should spend. With ``--images`` a missing engine or image fails, never skips.
``CLIPPER_IMAGES`` (names, space separated) limits them to the images just built.

Containers run as the cluster runs them: no capabilities, a read-only root, a
non-root user. The model images serve a model trained here and now, over OIP
gRPC, to the project's own client code, on Docker's default bridge: the test
talks only to the container's own address.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from clipper import __version__
from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs, decode_response
from clipper.testing.models import DigitsModels, digits_batch

pytestmark = pytest.mark.images

TAGS = {
    "clipper": f"clipper:{__version__}",
    "clipper-model": f"clipper-model:{__version__}",
    "clipper-model-cuda": f"clipper-model:{__version__}-cuda",
}
MODEL_IMAGES = ["clipper-model", "clipper-model-cuda"]
USER = "10001:10001"
LOCKED_DOWN = ["--cap-drop=ALL", "--read-only", "--user", USER]
COMPILERS = ["cc", "gcc", "c++", "g++", "clang", "x86_64-linux-gnu-gcc", "ld", "as"]


def _docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.returncode}\n{result.stderr}")
    return result.stdout


def _run_locked_down(tag: str, entrypoint: str, *args: str) -> str:
    """Run one command in ``tag`` as a cluster would, with no network; its stdout."""
    run = ["run", "--rm", "--network", "none", *LOCKED_DOWN, "--entrypoint", entrypoint]
    return _docker(*run, tag, *args)


def _wanted() -> list[str]:
    return os.environ.get("CLIPPER_IMAGES", "").split() or list(TAGS)


@pytest.fixture(scope="module", autouse=True)
def _engine(request: pytest.FixtureRequest) -> None:
    if not request.config.getoption("images"):
        pytest.skip("image tests are opt-in: `make test-images` (or pytest --images)")
    try:
        _docker("info", timeout=30)
    except (OSError, AssertionError) as exc:
        pytest.fail(f"no Docker engine answers ({exc}): run `make test-images`")


def _image(name: str) -> dict[str, Any]:
    if name not in _wanted():
        pytest.skip(f"{name} not in CLIPPER_IMAGES")
    out = _docker("image", "inspect", TAGS[name], check=False)
    if not out.strip():
        pytest.fail(f"{TAGS[name]} is not built: run `make images`")
    config: dict[str, Any] = json.loads(out)[0]["Config"]
    return config


@pytest.mark.parametrize("name", list(TAGS))
def test_runs_as_a_numeric_non_root_user(name: str) -> None:
    assert _image(name)["User"] == USER


@pytest.mark.parametrize("name", list(TAGS))
def test_labels_name_the_version_revision_and_source(name: str, repo_root: Path) -> None:
    labels = _image(name)["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"]
    revision = labels["org.opencontainers.image.revision"].removesuffix("-dirty")
    assert re.fullmatch(r"[0-9a-f]{40}", revision), revision
    known = subprocess.run(
        ["git", "-C", str(repo_root), "cat-file", "-e", f"{revision}^{{commit}}"]
    )
    assert known.returncode == 0, f"revision {revision} is not a commit of this repository"


@pytest.mark.parametrize("name", list(TAGS))
def test_has_no_compiler(name: str) -> None:
    _image(name)
    probe = (
        "import glob, shutil, sys; "
        f"found = [c for c in {COMPILERS!r} if shutil.which(c)]; "
        "found += glob.glob('/usr/lib/gcc/*/*/cc1*') + glob.glob('/usr/include/stdio.h'); "
        "print(' '.join(found))"
    )
    out = _run_locked_down(TAGS[name], "python3", "-c", probe)
    assert out.strip() == "", f"{TAGS[name]} holds a toolchain: {out}"


@pytest.mark.parametrize("name", list(TAGS))
def test_clipper_runs_locked_down(name: str) -> None:
    _image(name)
    out = _run_locked_down(TAGS[name], "clipper", "--version")
    assert out.strip() == f"clipper {__version__}"


def test_the_clipper_image_has_the_native_grpc_front_where_the_frontend_finds_it() -> None:
    _image("clipper")
    probe = "from clipper.frontend.grpc.native import find_front; print(find_front())"
    out = _run_locked_down(TAGS["clipper"], "python3", "-c", probe)
    assert out.strip() == "/opt/clipper/bin/clipper-grpc-front"


def test_the_cuda_image_has_cuda_torch() -> None:
    _image("clipper-model-cuda")
    probe = "import torch; print(torch.version.cuda or '')"
    out = _run_locked_down(TAGS["clipper-model-cuda"], "python3", "-c", probe)
    assert re.fullmatch(r"\d+\.\d+", out.strip()), f"torch without CUDA: {out!r}"


@pytest.fixture
def model_dir(digits_models: DigitsModels) -> Path:
    """The trained joblib, in a folder the container's user may read."""
    path = digits_models.logistic_regression
    path.parent.chmod(0o755)
    path.chmod(0o644)
    return path.parent


@pytest.fixture
def container() -> Iterator[list[str]]:
    """Ids of containers a test started; each is removed after it, whatever happened
    (its log printed first: pytest shows it when the test failed)."""
    ids: list[str] = []
    yield ids
    for cid in ids:
        subprocess.run(["docker", "logs", cid], timeout=30, check=False)
        _docker("rm", "--force", cid, check=False)


def _wait_ready(stub: Any, cid: str, within_s: float = 120) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if stub.ServerReady(pb.ServerReadyRequest(), timeout=2).ready:
                return
        except grpc.RpcError:
            pass
        state = _docker("inspect", "-f", "{{.State.Running}}", cid).strip()
        assert state == "true", "the model container exited (its log is below)"
        time.sleep(0.2)
    raise AssertionError(f"not ready within {within_s} s (its log is below)")


@pytest.mark.parametrize("name", MODEL_IMAGES)
def test_model_image_serves_a_trained_sklearn_model(
    name: str, model_dir: Path, digits_models: DigitsModels, container: list[str]
) -> None:
    import joblib

    _image(name)
    args = ["--framework", "sklearn", "--uri", "/models/digits-logistic.joblib"]
    args += ["--name", "digits", "--method", "predict_proba", "--threads", "1"]
    cid = _docker(
        "run", "--detach", *LOCKED_DOWN, "--volume", f"{model_dir}:/models:ro", TAGS[name], *args
    ).strip()
    container.append(cid)
    address = _docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid).strip()
    assert address, "the container has no address on the default bridge"

    with grpc.insecure_channel(f"{address}:8001") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        _wait_ready(stub, cid)
        batch = digits_batch(16)
        request = pb.ModelInferRequest(model_name="digits")
        add_raw_inputs(request, {"input": batch})
        served = decode_response(stub.ModelInfer(request, timeout=30))["output"]
    expected = joblib.load(digits_models.logistic_regression).predict_proba(batch)
    np.testing.assert_allclose(served, expected, rtol=1e-9)

    with urllib.request.urlopen(f"http://{address}:8002/metrics", timeout=10) as answer:
        assert b"clipper_model_info" in answer.read()
    # SIGTERM drains and exits 0, as a pod's termination expects.
    _docker("stop", "--time", "30", cid, timeout=60)
    assert _docker("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "0"
