"""Peers: MLServer (adaptive batching) and Ray Serve (``@serve.batch``) beside ours.

Each peer lives in a virtualenv of its own under ``~/.cache/clipper/eval/venvs``,
installed on first use from pinned requirements (a stamp file holds them; a
change reinstalls). Torch is several GB (the CUDA build from PyPI), so the
peers reuse ours: after their own install, a ``.pth`` file appends the
site-packages holding our torch to their path (their own packages come first,
and pip never saw it, so it resolved their dependencies alone).

Same models (``peer_models/predictors.py``: noop, the digits logistic regression
from one joblib file, the digits MLP from one TorchScript file), one thread
each, the same batch bound (32) for the peers, the same load generator
(``load.py``), all systems up together and each cell measured for each system
back to back, twice, the order reversed the second time, so a change in the
machine's load hits all of them alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clipper.common.protocol import pb
from clipper.common.protocol.tensors import add_raw_inputs
from clipper.testing.frontend import route
from clipper.testing.models import digits_batch, train_logistic_regression, train_torch_mlp

from . import load
from . import ours as our_side
from .record import Options

VENVS = Path.home() / ".cache/clipper/eval/venvs"
PEER_MODELS = Path(__file__).resolve().parent / "peer_models"
PYTHON = f"/root/.pyenv/versions/{sys.version.split()[0]}/bin/python3"
PEER_BATCH = 32
PEER_WAIT_S = 0.002
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@dataclass(frozen=True)
class PeerEnv:
    name: str
    requirements: tuple[str, ...]
    packages: tuple[str, ...]
    """Whose versions the results record."""

    @property
    def root(self) -> Path:
        return VENVS / self.name

    @property
    def python(self) -> Path:
        return self.root / "bin/python"

    def installed(self) -> bool:
        stamp = self.root / ".installed"
        return stamp.exists() and stamp.read_text() == json.dumps(self.requirements)

    def install(self) -> None:
        if self.installed():
            return
        print(f"installing {self.name} into {self.root} (first use: minutes)", flush=True)
        base = PYTHON if Path(PYTHON).exists() else sys.executable
        subprocess.run([base, "-m", "venv", "--clear", str(self.root)], check=True)
        pip = [str(self.python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *self.requirements], check=True, timeout=1800)
        self._reuse_torch()
        (self.root / ".installed").write_text(json.dumps(self.requirements))

    def _reuse_torch(self) -> None:
        try:
            import torch
        except ImportError:
            return
        site = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        ours = Path(torch.__file__).resolve().parents[1]
        (Path(site) / "zz_clipper_torch.pth").write_text(f"{ours}\n")

    def versions(self) -> dict[str, str]:
        code = (
            "import json, importlib.metadata as m; "
            f"print(json.dumps({{p: m.version(p) for p in {list(self.packages)!r}}}))"
        )
        out = subprocess.run([str(self.python), "-c", code], capture_output=True, text=True)
        return json.loads(out.stdout) if out.returncode == 0 else {}


SKLEARN = "scikit-learn==1.9.1"  # the joblib files are ours: the same scikit-learn loads them
MLSERVER = PeerEnv(
    "mlserver",
    ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22", SKLEARN),
    ("mlserver", "uvloop", "scikit-learn"),
)
RAY = PeerEnv("ray", ("ray[serve]==2.60.0", SKLEARN), ("ray", "scikit-learn"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """A peer's server in a process group of its own, stopped group and all."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **THREADS, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self, ready: Any, what: str, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{what} exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError, ValueError):
                if ready():
                    return
            time.sleep(0.5)
        raise TimeoutError(f"{what} not ready in {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 60.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # helpers left in the group
        self.process.wait()


def _get_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return bool(answer.status == 200)


@contextlib.contextmanager
def mlserver(directory: Path, models: dict[str, tuple[str, str]]) -> Iterator[dict[str, str]]:
    """One MLServer (one inference worker, as ours has one container per model)
    serving ``models`` (name -> (kind, uri)) with adaptive batching."""
    root = directory / "mlserver"
    http, grpc_port = free_port(), free_port()
    settings = {
        "http_port": http,
        "grpc_port": grpc_port,
        "metrics_port": free_port(),
        "parallel_workers": 1,
        "host": "127.0.0.1",
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(json.dumps(settings))
    for name, (kind, uri) in models.items():
        (root / name).mkdir(exist_ok=True)
        model = {
            "name": name,
            "implementation": "mlserver_runtime.EvalModel",
            "max_batch_size": PEER_BATCH,
            "max_batch_time": PEER_WAIT_S,
            "parameters": {"uri": uri, "extra": {"kind": kind}},
        }
        (root / name / "model-settings.json").write_text(json.dumps(model))
    env = {"PYTHONPATH": str(PEER_MODELS)}
    child = Child(
        [str(MLSERVER.root / "bin/mlserver"), "start", str(root)], env, directory / "mlserver.log"
    )
    try:
        base = f"http://127.0.0.1:{http}"
        for name in models:
            child.wait(lambda n=name: _get_ok(f"{base}/v2/models/{n}/ready"), f"MLServer {name}")
        yield {"url": base, "grpc": f"127.0.0.1:{grpc_port}"}
    finally:
        child.stop()


@contextlib.contextmanager
def ray_serve(directory: Path, models: dict[str, tuple[str, str]]) -> Iterator[dict[str, str]]:
    port = free_port()
    command = [str(RAY.python), str(PEER_MODELS / "ray_app.py"), str(port), str(PEER_BATCH)]
    command += [str(PEER_WAIT_S), *(f"{name}={kind}:{uri}" for name, (kind, uri) in models.items())]
    env = {"PYTHONPATH": str(PEER_MODELS), "RAY_USAGE_STATS_ENABLED": "0"}
    child = Child(command, env, directory / "ray.log")
    try:
        child.wait(lambda: "READY" in child.log.read_text(), "Ray Serve", timeout=300)
        yield {"url": f"http://127.0.0.1:{port}"}
    finally:
        child.stop()


MODELS = {"noop": "noop", "digits": "sklearn", "mlp": "torch"}


def artifacts(directory: Path, names: list[str]) -> dict[str, tuple[str, str]]:
    """name -> (kind, uri): the files every system loads."""
    found = {}
    for name in names:
        kind = MODELS[name]
        if kind == "sklearn":
            found[name] = (kind, str(train_logistic_regression(directory)))
        elif kind == "torch":
            found[name] = (kind, str(train_torch_mlp(directory).torchscript))
        else:
            found[name] = (kind, "")
    return found


@contextlib.contextmanager
def ours(directory: Path, models: dict[str, tuple[str, str]]) -> Iterator[dict[str, str]]:
    """One container per model and one frontend (adaptive batching, cache off)."""
    with our_side.containers(models) as servers:
        apps = [
            route(n, {n: [s.address]}, latency_slo_ms=1000, cache={"enabled": False})
            for n, s in servers.items()
        ]
        with our_side.frontend(directory / "routes-peers.yaml", *apps) as process:
            yield {"url": process.url, "grpc": process.grpc_address}


def _bodies(system: str, name: str, kind: str, rows: np.ndarray) -> list[str]:
    if system == "mlserver":
        datatype = "FP32" if kind == "torch" else "FP64"
        return [
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "input",
                            "shape": [1, 64],
                            "datatype": datatype,
                            "data": row.tolist(),
                        }
                    ]
                }
            )
            for row in rows
        ]
    return [json.dumps({"input": row.tolist()}) for row in rows]


def _grpc_request(directory: Path, name: str, kind: str, rows: np.ndarray) -> Path:
    request = pb.ModelInferRequest(model_name=name)
    dtype = np.float32 if kind == "torch" else np.float64
    add_raw_inputs(request, {"input": rows[:1].astype(dtype)})
    path = directory / f"{name}.bin"
    path.write_bytes(request.SerializeToString())
    return path


def _http_path(system: str, name: str) -> str:
    return {"ours": f"/{name}/predict", "mlserver": f"/v2/models/{name}/infer"}.get(
        system, f"/{name}"
    )


def measure_cells(
    systems: dict[str, dict[str, str]],
    models: dict[str, tuple[str, str]],
    levels: list[int],
    seconds: float,
    directory: Path,
    repeats: int = 1,
) -> list[dict[str, Any]]:
    """Each cell ``repeats`` times, the systems' order reversed every other time (so
    no system always runs right after the same neighbour); the runs of a cell merge
    into one: req/s and p50 averaged, the worst p99, errors added."""
    rows = digits_batch(64)
    merged: dict[tuple[str, str, str, int], list[load.Result]] = {}
    have_wrk, have_ghz = load.tool("wrk") is not None, load.tool("ghz") is not None
    for name, (kind, _) in models.items():
        request = _grpc_request(directory, name, kind, rows)
        scripts = {s: load.fixed_script(_bodies(s, name, kind, rows)) for s in systems}
        for c in levels:
            for repeat in range(repeats):
                order = list(systems.items())
                for system, where in order if repeat % 2 == 0 else reversed(order):
                    if have_wrk:
                        url = where["url"] + _http_path(system, name)
                        result = load.wrk(url, scripts[system], c, seconds)
                        _show(system, "rest", name, c, result)
                        merged.setdefault((system, "rest", name, c), []).append(result)
                    if have_ghz and "grpc" in where:
                        result = load.ghz(where["grpc"], request, c, seconds)
                        _show(system, "grpc", name, c, result)
                        merged.setdefault((system, "grpc", name, c), []).append(result)
    return [_cell(*key, runs) for key, runs in merged.items()]


def _show(system: str, protocol: str, model: str, c: int, result: load.Result) -> None:
    print(
        f"  {model:<7} c={c:<3} {system:<8} {protocol:<4} {result.rps:8,.0f} req/s "
        f"p50 {result.p50_ms:6.1f} p99 {result.p99_ms:7.1f} ms errors {result.errors}",
        flush=True,
    )


def _cell(
    system: str, protocol: str, model: str, c: int, runs: list[load.Result]
) -> dict[str, Any]:
    result = load.Result(
        rps=sum(r.rps for r in runs) / len(runs),
        p50_ms=sum(r.p50_ms for r in runs) / len(runs),
        p99_ms=max(r.p99_ms for r in runs),
        requests=sum(r.requests for r in runs),
        errors=sum(r.errors for r in runs),
        seconds=sum(r.seconds for r in runs),
    )
    return {
        "system": system,
        "protocol": protocol,
        "model": model,
        "concurrency": c,
        **result.as_dict(),
        "runs": len(runs),
    }


def run(options: Options) -> dict[str, Any]:
    # quick: two models, so a model whose name is not its kind (digits: sklearn) is covered
    names = ["noop", "digits"] if options.quick else list(MODELS)
    levels = [1, 16] if options.quick else [1, 16, 64]
    notes = load.missing_tools()
    notes.append(
        "Ray Serve: HTTP only (its gRPC proxy serves user-compiled protos, not the OIP); "
        f"peers batch up to {PEER_BATCH} rows, waiting at most {PEER_WAIT_S * 1000:g} ms; "
        "ours: adaptive (AIMD) batching up to 256, no wait."
    )
    peers = []
    for env in (MLSERVER, RAY):
        try:
            env.install()
            peers.append(env)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            notes.append(f"{env.name} could not be installed ({exc}): left out")
    peer_versions = {env.name: env.versions() for env in peers}
    with (
        tempfile.TemporaryDirectory(prefix="clipper-eval-peers-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        directory = Path(tmp)
        models = artifacts(directory, names)
        systems = {"ours": stack.enter_context(ours(directory, models))}
        starters = {"mlserver": mlserver, "ray": ray_serve}
        for env in peers:
            try:
                systems[env.name] = stack.enter_context(starters[env.name](directory, models))
            except (RuntimeError, TimeoutError) as exc:
                notes.append(f"{env.name} did not start: {str(exc)[-400:]}")
        repeats = 1 if options.quick else 2
        cells = measure_cells(systems, models, levels, options.seconds, directory, repeats)
    return {
        "cells": cells,
        "models": names,
        "concurrency": levels,
        "systems": list(systems),
        "notes": notes,
        "peer_versions": peer_versions,
    }
