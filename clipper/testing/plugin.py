"""Pytest plugin with the fixtures that every test folder shares.

Enabled for the project's suite through ``-p clipper.testing.plugin`` in
pyproject.toml. Keep imports here light: heavy fixtures (trained models, the
Kubernetes control plane) live in their own modules and import lazily.

The Kubernetes control plane (``k8s``) starts once per session. When the binaries are
missing it skips its tests with the command that builds them, except under ``CI=true``,
where a control plane that cannot start fails the run: CI never goes green by skipping.
Its folder (logs, kubeconfig, certificates) is deleted after a session with no failures
and kept, with its path in the summary, after any failure.

Every wait is on one time scale (``clipper.testing.timeouts``): this plugin scales
pytest-timeout's per-test limit by it too, unless ``--timeout`` or ``PYTEST_TIMEOUT``
set one explicitly. A failing test's report carries the logs of the processes it
started and, on the control plane, the cluster's Events and objects
(``clipper.testing.diagnostics``), so CI's log alone is enough to diagnose it.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from clipper.testing.diagnostics import REGISTRY, cluster_sections
from clipper.testing.timeouts import scale, scaled

if TYPE_CHECKING:
    from clipper.testing.controlplane import ControlPlane
    from clipper.testing.model_servers import ModelServer
    from clipper.testing.models import DigitsModels
    from clipper.testing.redis_server import RedisServer
    from clipper.testing.s3 import S3Server

_PLANE = pytest.StashKey["ControlPlane"]()
_KEPT = pytest.StashKey[bool]()
_REPORTED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("clipper")
    group.addoption("--e2e", action="store_true", help="run the kind end-to-end suite (e2e/)")
    group.addoption(
        "--keep-cluster", action="store_true", help="keep the e2e kind cluster after the run"
    )
    group.addoption(
        "--images",
        action="store_true",
        help="check the built images (tests/images; `make test-images` builds them first)",
    )
    group.addoption(
        "--keep-controlplane",
        action="store_true",
        help="keep the test control plane's folder (logs, kubeconfig) even when all pass",
    )


@pytest.hookimpl(tryfirst=True)  # before pytest-timeout reads its settings
def pytest_configure(config: pytest.Config) -> None:
    explicit = config.getoption("timeout", None) is not None or os.environ.get("PYTEST_TIMEOUT")
    try:
        ini = config.getini("timeout")  # pytest-timeout's setting
    except ValueError:  # pytest-timeout is not installed
        return
    if not explicit and ini:
        config.option.timeout = scaled(float(ini))


def pytest_report_header(config: pytest.Config) -> str:
    timeout = config.getoption("timeout", None)
    limit = f"; per-test limit {timeout:.0f}s" if timeout else ""
    return f"clipper: test timeouts scaled by {scale():g} (CLIPPER_TEST_TIMEOUT_SCALE){limit}"


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


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A real S3-compatible server (SeaweedFS) on 127.0.0.1, shared by the session."""
    from clipper.testing.s3 import require_weed, s3_server

    with s3_server(require_weed()) as server:
        yield server


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    """A real redis-server (Debian's package) on 127.0.0.1, shared by the session."""
    from clipper.testing.redis_server import redis_server, require_redis

    with redis_server(require_redis()) as server:
        yield server


@pytest.fixture
def redis(redis_session: RedisServer) -> RedisServer:
    """The session's redis-server, emptied for this test (and started again if a test
    stopped it)."""
    if redis_session._process is None:
        redis_session.start()
    redis_session.flush()
    return redis_session


@pytest.fixture(scope="session")
def k8s(request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    """A real Kubernetes control plane with kwok nodes, shared by the whole session."""
    from clipper.testing.controlplane import ControlPlane
    from clipper.testing.k8s_install import require_installation

    plane = ControlPlane(require_installation())
    request.config.stash[_PLANE] = plane
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()
        keep = bool(request.session.testsfailed) or request.config.getoption("keep_controlplane")
        request.config.stash[_KEPT] = keep or plane.start_seconds is None
        if not request.config.stash[_KEPT]:
            plane.remove_workdir()


@pytest.fixture(scope="session")
def operator_kubeconfig(k8s: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator installed as ``clipper operator manifests`` prints it (CRDs, RBAC),
    and a kubeconfig of its ServiceAccount for ``clipper operator`` processes to use.
    See ``clipper.testing.k8s_clipper``."""
    from clipper.testing.k8s_clipper import (
        OPERATOR_ACCOUNT,
        OPERATOR_NAMESPACE,
        install_operator,
        service_account_kubeconfig,
    )

    install_operator(k8s)
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    return service_account_kubeconfig(k8s, OPERATOR_NAMESPACE, OPERATOR_ACCOUNT, path)


@pytest.fixture
def namespace(k8s: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted after it."""
    name = k8s.create_namespace(request.node.name)
    yield name
    k8s.delete_namespace(name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "k8s" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.controlplane)


@pytest.hookimpl(tryfirst=True)  # before the fixtures of the test start anything
def pytest_runtest_setup(item: pytest.Item) -> None:
    REGISTRY.begin_test()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The first failing phase of a test (setup, call or teardown) gets the logs of
    the processes it started and, on the control plane, the cluster's state."""
    report = yield
    if not report.failed or item.stash.get(_REPORTED, False):
        return report
    item.stash[_REPORTED] = True
    report.sections.extend(REGISTRY.process_sections())
    plane = item.config.stash.get(_PLANE, None)
    if plane is not None and plane.api is not None and "k8s" in getattr(item, "fixturenames", ()):
        report.sections.extend(cluster_sections(plane.kubectl, REGISTRY.namespaces))
        report.sections.append(("control plane", f"component logs are kept in {plane.log_dir}"))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    plane = terminalreporter.config.stash.get(_PLANE, None)
    if plane is None:
        return
    version = plane.installation.kubernetes_version
    if plane.start_seconds is not None:
        terminalreporter.write_line(
            f"control plane: Kubernetes {version} started in {plane.start_seconds:.1f}s"
        )
    if terminalreporter.config.stash.get(_KEPT, False):
        terminalreporter.write_line(f"control plane: logs and kubeconfig kept in {plane.workdir}")
