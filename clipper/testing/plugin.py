"""Pytest plugin with the fixtures that every test folder shares.

Enabled for the project's suite through ``-p clipper.testing.plugin`` in
pyproject.toml. Keep imports here light: heavy fixtures (trained models, the
Kubernetes control plane) live in their own modules and import lazily.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper.testing.processes import free_port


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
