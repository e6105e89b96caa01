"""Fixtures of the end-to-end suite: one kind cluster per session, the images of
`make images` loaded into it, the chart installed with `helm install`, and a results
file the note can quote.

Opt-in (``--e2e``, which `make e2e` and `make test` pass) and never skipped under
``CI=true``; otherwise a missing Docker engine or kind fixture skips with the reason.
The tests form one scenario on one cluster (a session-scoped cluster costs minutes,
so tests share it, as dask-kubernetes' do), so this file runs them in the order
they are written, whatever pytest-randomly does: the uninstall test must come last.
Everything started is stopped by context managers, even after a failure, except the
cluster under ``--keep-cluster``. A failing test's report carries the cluster's
diagnostics (``KindCluster.diagnostics()``: nodes, pods, Events, logs).

Timings and traffic counts go to ``e2e/.results/results.json`` (git-ignored) and
to the terminal summary.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import clipper
from clipper.testing.cluster_digits import node_models_path, train_models
from clipper.testing.k8s_helm import CHART, RELEASE, Helm, require_helm
from clipper.testing.timeouts import in_ci, scaled
from clipper.testing.traffic import Phase, table
from clipper.testing.waiting import wait_for

HERE = Path(__file__).resolve().parent
RESULTS = HERE / ".results"
ORDER = ("test_cluster_smoke.py", "test_digits.py", "test_uninstall.py")
"""Files in the order the scenario runs them (others after, by name)."""
IMAGES = (f"clipper:{clipper.__version__}", f"clipper-model:{clipper.__version__}")
OPERATOR_NAMESPACE = "clipper-system"
OPERATOR = "clipper-operator"
CLUSTER_NAME = "clipper-e2e"
PER_TEST_TIMEOUT_S = 1200

_CLUSTER = pytest.StashKey[Any]()
_RESULTS = pytest.StashKey["Results"]()
_REPORTED = pytest.StashKey[bool]()


# --- collection: opt-in, and in the written order ------------------------------------


def _rank(item: pytest.Item) -> tuple[int, str, int]:
    name = item.path.name
    place = ORDER.index(name) if name in ORDER else len(ORDER)
    return place, name, item.reportinfo()[1] or 0


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if HERE in item.path.parents]
    if not mine:
        return
    others = [item for item in items if HERE not in item.path.parents]
    opted_in = config.getoption("e2e") or in_ci()
    skip = pytest.mark.skip(reason="the kind e2e suite is opt-in: pass --e2e (make e2e does)")
    for item in mine:
        item.add_marker(pytest.mark.e2e)
        # Setup may create the cluster and install the chart: minutes, not pytest's 300 s.
        item.add_marker(pytest.mark.timeout(scaled(PER_TEST_TIMEOUT_S)))
        if not opted_in:
            item.add_marker(skip)
    items[:] = others + sorted(mine, key=_rank)


def _unavailable(why: str) -> None:
    """Skip with ``why``; under ``CI=true`` fail instead: CI never goes green by skipping."""
    if in_ci():
        pytest.fail(f"e2e: {why}", pytrace=False)
    pytest.skip(f"e2e: {why}")


# --- results --------------------------------------------------------------------------


@dataclass
class Results:
    """Timings and traffic tables, written to ``e2e/.results/results.json`` at each
    change (a run that dies half-way still leaves what it measured)."""

    path: Path
    timings: dict[str, float] = field(default_factory=dict)
    traffic: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def time(self, what: str, seconds: float) -> None:
        self.timings[what] = round(seconds, 1)
        print(f"\ne2e timing: {what}: {seconds:.1f} s")
        self._write()

    def phases(self, scenario: str, phases: list[Phase], title: str) -> str:
        self.traffic[scenario] = [p.to_dict() for p in phases]
        text = table(phases, title=title)
        self.tables.append(text)
        print(f"\n{text}")
        self._write()
        return text

    def note(self, key: str, value: Any) -> None:
        self.notes[key] = value
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"timings_s": self.timings, "traffic": self.traffic, "notes": self.notes}
        self.path.write_text(json.dumps(data, indent=2) + "\n")


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest) -> Results:
    found = Results(RESULTS / "results.json")
    request.config.stash[_RESULTS] = found
    return found


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    found = terminalreporter.config.stash.get(_RESULTS, None)
    if found is None:
        return
    terminalreporter.section("e2e results")
    for what, seconds in found.timings.items():
        terminalreporter.write_line(f"{what}: {seconds:.1f} s")
    for text in found.tables:
        terminalreporter.write_line("")
        terminalreporter.write_line(text)
    terminalreporter.write_line(f"\n(also in {found.path})")


# --- the cluster ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def kind() -> ModuleType:
    """``clipper.testing.kind``: the kind binary, node image and Docker engine."""
    try:
        found = importlib.import_module("clipper.testing.kind")
    except ImportError as exc:
        _unavailable(f"the kind fixture (clipper.testing.kind) cannot be imported: {exc}")
        raise
    why = found.docker_missing()
    if why is not None:
        _unavailable(f"no Docker here: {why}")
    return found


@pytest.fixture(scope="session")
def models_dir(results: Results) -> Iterator[Path]:
    """The example's models, trained now, in the folder the node mounts. Not under
    pytest's basetemp: a pytest session started meanwhile on the machine prunes all
    but the newest three basetemps, and would take the models from under the node."""
    with tempfile.TemporaryDirectory(prefix="clipper-e2e-models-") as made:
        directory = Path(made)
        directory.chmod(0o755)
        accuracy = train_models(directory)
        results.note("held_out_accuracy", accuracy)
        yield directory


def _missing_images() -> list[str]:
    found = []
    for ref in IMAGES:
        inspect = subprocess.run(
            ["docker", "image", "inspect", ref], capture_output=True, text=True, timeout=60
        )
        if inspect.returncode != 0:
            found.append(ref)
    return found


@pytest.fixture(scope="session")
def cluster(
    request: pytest.FixtureRequest, kind: ModuleType, models_dir: Path, results: Results
) -> Iterator[Any]:
    """One kind cluster for the session, the images loaded, the models mounted where
    the example's PersistentVolume points; deleted after (kept with --keep-cluster)."""
    keep = bool(request.config.getoption("keep_cluster"))
    with kind.ensure_docker():
        missing = _missing_images()
        if missing:
            pytest.fail(
                f"e2e: the images {missing} are not in the Docker engine: run `make images` "
                "(or scripts/build-images.sh clipper clipper-model)",
                pytrace=False,
            )
        kind.build_node_image()
        started = time.monotonic()
        mounts = [(models_dir, node_models_path())]
        with kind.kind_cluster(CLUSTER_NAME, extra_mounts=mounts, keep=keep) as found:
            results.time("kind cluster creation", time.monotonic() - started)
            for what, seconds in getattr(found, "timings", {}).items():  # the fixture's own
                results.time(f"kind fixture: {what}", seconds)
            request.config.stash[_CLUSTER] = found
            started = time.monotonic()
            for ref in IMAGES:
                found.load_image(ref)
            results.time("kind load of the two images", time.monotonic() - started)
            try:
                yield found
            finally:
                request.config.stash[_CLUSTER] = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The first failing phase of an e2e test gets the cluster's diagnostics."""
    report = yield
    found = item.config.stash.get(_CLUSTER, None)
    if not report.failed or found is None or item.stash.get(_REPORTED, False):
        return report
    item.stash[_REPORTED] = True
    try:
        report.sections.append(("kind cluster diagnostics", found.diagnostics()))
    except Exception as exc:  # a diagnosis must never hide the failure itself
        report.sections.append(("kind cluster diagnostics", f"could not collect: {exc!r}"))
    return report


# --- the chart ------------------------------------------------------------------------


def _operator_live(cluster: Any) -> bool:
    """The operator's kopf liveness endpoint answers, through the API server's pod
    proxy. The chart has no readiness probe, so a pod that crashes at start-up is
    Ready for a moment and `helm install --wait` can return before it fails."""
    pods = json.loads(
        cluster.kubectl("get", "pods", "-n", OPERATOR_NAMESPACE, "-o", "json").stdout
    )["items"]
    for pod in pods:
        name = pod["metadata"]["name"]
        path = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods/{name}:8080/proxy/healthz"
        if cluster.kubectl("get", "--raw", path, check=False).returncode == 0:
            return True
    return False


@dataclass
class Release:
    helm: Helm
    namespace: str
    installed: bool = True

    def uninstall(self) -> None:
        self.helm.run(
            "uninstall",
            RELEASE,
            "--namespace",
            self.namespace,
            "--wait",
            "--timeout",
            "180s",
            timeout=240,
        )
        self.installed = False


@pytest.fixture(scope="session")
def helm_home() -> Iterator[Path]:
    """Helm's config and cache for the session, outside pytest's basetemp (see
    ``models_dir``)."""
    with tempfile.TemporaryDirectory(prefix="clipper-e2e-helm-") as made:
        yield Path(made)


@pytest.fixture(scope="session")
def release(cluster: Any, helm_home: Path, results: Results) -> Iterator[Release]:
    """``helm install`` of the chart with the loaded images (pull policy Never: an image
    that is not on the node fails at once instead of trying a registry), watching
    every namespace; uninstalled after, unless a test did."""
    helm = Helm(require_helm(), helm_home, cluster.kubeconfig)
    installed = Release(helm, OPERATOR_NAMESPACE)
    started = time.monotonic()
    try:
        helm.run(
            "install",
            RELEASE,
            str(CHART),
            "--namespace",
            OPERATOR_NAMESPACE,
            "--create-namespace",
            "--set",
            "image.pullPolicy=Never",
            "--wait",
            "--timeout",
            f"{scaled(300):.0f}s",
            timeout=scaled(300) + 60,
        )
        wait_for(lambda: _operator_live(cluster), timeout=300, interval=1,
                 what="the operator's /healthz answering (kopf running)")  # fmt: skip
        results.time("helm install to the operator Ready", time.monotonic() - started)
        yield installed
    finally:
        if installed.installed:
            helm.run(
                "uninstall",
                RELEASE,
                "--namespace",
                OPERATOR_NAMESPACE,
                "--ignore-not-found",
                check=False,
                timeout=240,
            )
