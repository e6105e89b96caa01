"""Model containers shared by the frontend tests (real processes, started once).

* ``graded_servers``: three sklearn digits classifiers of clearly different
  quality (``good``, ``fair``, ``poor``; see ``clipper.testing.graded_models``);
* ``echo_server``: a python model answering each row with itself after a
  latency the test sets through ``latency`` (4 FP64 columns per row);
* ``digits_logistic_server`` (from the project plugin): predict_proba of the
  digits logistic regression.

Frontends are per test and in process (``clipper.testing.frontend.serving``),
so a test sees its own metrics and learning state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.testing.frontend import start_model_servers
from clipper.testing.graded_models import GRADES, train_graded
from clipper.testing.latency import URI, LatencyControl
from clipper.testing.model_servers import ModelServer

ECHO_ARGS = ["--input-datatype", "FP64", "--input-shape=-1,4", "--threads", "1"]


@pytest.fixture(scope="session")
def graded_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModelServer]]:
    paths = train_graded(tmp_path_factory.mktemp("graded"))
    specs = [
        {"framework": "sklearn", "uri": paths[g], "name": g, "args": ["--threads", "1"]}
        for g in GRADES
    ]
    servers = start_model_servers(specs)
    yield dict(zip(GRADES, servers, strict=True))
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def _latency_control(tmp_path_factory: pytest.TempPathFactory) -> LatencyControl:
    return LatencyControl(tmp_path_factory.mktemp("latency") / "latency")


@pytest.fixture(scope="session")
def echo_server(_latency_control: LatencyControl) -> Iterator[ModelServer]:
    spec = {
        "framework": "python",
        "uri": URI,
        "name": "echo",
        "args": ECHO_ARGS,
        "env": _latency_control.env,
    }
    (server,) = start_model_servers([spec])
    yield server
    server.stop()


@pytest.fixture
def latency(_latency_control: LatencyControl, echo_server: ModelServer) -> Iterator[LatencyControl]:
    """The echo model's latency, fast (0) at the start and end of each test."""
    _latency_control.set(0.0)
    yield _latency_control
    _latency_control.set(0.0)


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    """Where a test writes its routes file."""
    return tmp_path / "routes.yaml"
