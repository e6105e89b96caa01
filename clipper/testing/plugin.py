"""Pytest plugin with the fixtures that every test folder shares.

Enabled for the project's suite through ``-p clipper.testing.plugin`` in
pyproject.toml. Keep imports here light: heavy fixtures (trained models, the
Kubernetes control plane) live in their own modules and import lazily.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from clipper.testing.processes import free_port

if TYPE_CHECKING:
    from clipper.testing.model_servers import ModelServer
    from clipper.testing.models import DigitsModels


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("clipper")
    group.addoption("--e2e", action="store_true", help="run the kind end-to-end suite (e2e/)")
    group.addoption(
        "--keep-cluster", action="store_true", help="keep the e2e kind cluster after the run"
    )


@pytest.fixture
def port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory: pytest.TempPathFactory) -> DigitsModels:
    """Real digits models (sklearn, torch, ONNX), each trained on first use, once per session.

    ``.logistic_regression`` and ``.random_forest`` are joblib paths, ``.torch_mlp``
    a ``TorchMLP`` (TorchScript and state_dict paths, and the factory), ``.onnx``
    an .onnx path. See ``clipper.testing.models``.
    """
    from clipper.testing.models import DigitsModels

    return DigitsModels(tmp_path_factory.mktemp("digits-models"))


@pytest.fixture(scope="session")
def digits_logistic_server(digits_models: DigitsModels) -> Iterator[ModelServer]:
    """A model container serving the digits ``LogisticRegression``'s ``predict_proba``.

    Model name ``digits-logistic``, version ``1``; input ``input`` FP64 ``[-1, 64]``,
    output ``output`` FP64 ``[-1, 10]``; metrics on ``.metrics_port``. Shared by
    the whole session: do not stop it or change its state.
    """
    from clipper.testing.model_servers import ModelServer

    args = ["--method", "predict_proba", "--threads", "1"]
    uri = digits_models.logistic_regression
    with ModelServer.start("sklearn", uri, name="digits-logistic", args=args) as server:
        yield server
