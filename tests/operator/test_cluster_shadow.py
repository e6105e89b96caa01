"""A Shadow rollout on the real control plane, judged on labels a real frontend scored.

kwok runs no containers, so the frontend and the two versions of ``digits`` run
here, on 127.0.0.1: v1 a weak digits classifier (~40% right), v2 a strong one
(~97%), behind one ``clipper frontend`` whose routes serve v1 and mirror v2 as
the Shadow rollout asks (``status.shadowVersion``). A stand-in pod is where the
operator finds that frontend (``frontend_stand_in``). The test sends digits and
their true labels; the operator reads the frontend's paired counts, its
sequential test promotes v2, and the Event and ``kubectl get mdep`` show the
evidence. No timing is asserted; the waits are bounded.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.testing.controlplane import ControlPlane
from clipper.testing.frontend import FrontendProcess, post_json, route, write_routes
from clipper.testing.graded_models import start_graded_versions
from clipper.testing.k8s_clipper import (
    MODELS,
    clipper_app,
    create,
    events,
    frontend_stand_in,
    operator,
    read,
    start_model,
    swap,
    wait_for_object,
)
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits

pytestmark = pytest.mark.controlplane

SHADOW = {"strategy": "Shadow", "drainSeconds": 1}
MAX_QUERIES = 1000


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ModelServer]]:
    """``digits`` v1 (the fair classifier) and v2 (the good one), as model servers here."""
    servers = start_graded_versions(tmp_path_factory.mktemp("graded"), {"v1": "fair", "v2": "good"})
    yield servers
    for server in servers:
        server.stop()


@contextlib.contextmanager
def frontend(tmp_path: Path, servers: list[ModelServer]) -> Iterator[FrontendProcess]:
    """A frontend serving app ``digits`` from v1, mirroring every query to v2."""
    v1, v2 = servers
    versions = [
        {"version": "v1", "weight": 100, "replicas": [v1.address]},
        {"version": "v2", "weight": 0, "shadow": True, "replicas": [v2.address]},
    ]
    app = route("digits", {"digits": versions}, latency_slo_ms=2000, cache={"enabled": False})
    routes = write_routes(tmp_path / "routes.yaml", app)
    with FrontendProcess(routes) as started:
        yield started.wait_ready()


def label_until_promoted(k8s: ControlPlane, namespace: str, fe: FrontendProcess) -> int:
    """Predict and label digits until v2 is stable; the queries it took."""
    pixels, labels = digits()
    started = time.monotonic()
    for i in range(MAX_QUERIES):
        answer = post_json(f"{fe.url}/digits/predict", {"input": pixels[i].tolist()})
        if not answer["default"]:
            body = {"query_id": answer["query_id"], "label": int(labels[i])}
            post_json(f"{fe.url}/digits/feedback", body)
        if i % 10 == 9:
            status = read(k8s, namespace, MODELS, "digits").get("status") or {}
            if status.get("stableVersion") == "v2":
                return i + 1
        assert time.monotonic() - started < 240, f"v2 not promoted after {i + 1} labels"
    raise AssertionError(f"v2 not promoted after {MAX_QUERIES} labels")


def test_a_stronger_version_in_the_shadow_is_promoted_on_labels(
    k8s: ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tmp_path: Path,
    versions: list[ModelServer],
) -> None:
    with (
        frontend(tmp_path, versions) as fe,
        operator(operator_kubeconfig, namespace, tmp_path) as proc,
    ):
        create(k8s, namespace, clipper_app("digits", ["digits"]))
        start_model(k8s, namespace, proc, name="digits", rollout=SHADOW)
        frontend_stand_in(k8s, namespace, "digits", fe.http_port)
        swap(k8s, namespace, "v2")
        shadowing = wait_for_object(
            k8s, namespace, MODELS, "digits",
            lambda o: (o.get("status") or {}).get("shadowVersion") == "v2",
            "v2 in the shadow", operator=proc,
        )  # fmt: skip
        label_until_promoted(k8s, namespace, fe)
        promoted = read(k8s, namespace, MODELS, "digits")
        printed = k8s.kubectl("get", "mdep", "digits", "-n", namespace).stdout
        found = events(k8s, namespace, "digits")
    assert shadowing["status"]["trafficSummary"] == "v1=100"
    assert promoted["status"]["trafficSummary"] == "v2=100"
    messages = [m for _, reason, m in found if reason == "ShadowPromoted"]
    assert len(messages) == 1
    assert "v2 is better: n=" in messages[0]
    analysis = promoted["status"]["analysis"]
    assert (analysis["version"], analysis["verdict"]) == ("v2", "Passed")
    assert analysis["samples"] >= 30
    assert "Passed" in printed
