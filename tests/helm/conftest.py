"""Fixtures of the chart's tests: the real helm binary, with a throwaway home."""

from __future__ import annotations

import pytest

from clipper.testing.k8s_helm import Helm, require_helm


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(require_helm(), tmp_path_factory.mktemp("helm-home"))
