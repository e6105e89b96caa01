"""Shadow rollouts in ``clipper run``, with real digits forests and labels.

digits-forest v1 (weak) serves; v2 (strong) is applied with the Shadow strategy:
it gets a mirrored copy of every query and answers nobody, the test sends the
true label of each answer by query id (as ``examples/digits/client.py feedback``
does), and the run's sequential test promotes v2 once the labels are enough.
Then v3 (worse than v2) is applied the same way and rejected: scaled to zero,
having answered not one caller -- every answer the callers got meanwhile is
v2's, and the frontend counted no query served by v3. No timing is asserted:
the client loop is bounded in queries and seconds, and stops at the verdict.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clipper.testing.frontend import post_json
from clipper.testing.graded_models import train_forests
from clipper.testing.local import (
    LocalRun,
    clipper_app,
    deployment,
    label_until,
    model_deployment,
    traffic,
    write_manifests,
)
from clipper.testing.models import digits

SHADOW = {"strategy": "Shadow", "drainSeconds": 1, "progressDeadlineSeconds": 120}


def forest(version: str, path: Path, **rollout: Any) -> dict[str, Any]:
    return model_deployment(
        "digits-forest", version, "sklearn", str(path), threads=1, rollout={**SHADOW, **rollout}
    )


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        loaded: dict[str, Any] = json.loads(answer.read())
        return loaded


def phase(version: str) -> Callable[[dict[str, Any]], bool]:
    def check(status: dict[str, Any]) -> bool:
        versions = deployment(status, "digits-forest")["status"].get("versions", [])
        return any(
            v["version"] == version and v["phase"] in ("Serving", "Failed") for v in versions
        )

    return check


def event(status: dict[str, Any], reason: str) -> str:
    messages = [e["message"] for e in status["events"] if e["reason"] == reason]
    assert messages, f"no {reason} event in {[e['reason'] for e in status['events']]}"
    return str(messages[-1])


def labels_taken(message: str) -> int:
    found = re.search(r"n=(\d+) labelled pairs", message)
    assert found is not None, message
    return int(found.group(1))


@pytest.fixture(scope="module")
def forests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return train_forests(tmp_path_factory.mktemp("forests"))


@pytest.fixture
def run(tmp_path: Path, forests: dict[str, Path]) -> Iterator[tuple[LocalRun, Path]]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    app = clipper_app("digits", ["digits-forest"], latencySLOMillis=1000, cache={"enabled": False})
    write_manifests(folder / "app.yaml", app)
    write_manifests(folder / "forest.yaml", forest("v1", forests["v1"]))
    ports = ["--http-port", "0", "--grpc-port", "0"]  # free ones: other runs may hold 8080
    with LocalRun([folder], tmp_path / "cache", ports) as started:
        started.wait_serving()
        yield started, folder


def apply(local: LocalRun, folder: Path, manifest: dict[str, Any]) -> None:
    write_manifests(folder / "forest.yaml", manifest)
    local.apply(folder / "forest.yaml")
    local.wait_status(
        lambda s: deployment(s, "digits-forest")["status"].get("shadowVersion") is not None,
        timeout=120,
        what="the candidate in the shadow",
    )


def test_a_stronger_version_is_promoted_and_a_worse_one_rejected_unseen(
    run: tuple[LocalRun, Path], forests: dict[str, Path]
) -> None:
    import joblib

    local, folder = run
    apply(local, folder, forest("v2", forests["v2"]))
    label_until(local, phase("v2"))
    state = local.status()
    promoted = event(state, "ShadowPromoted")
    assert traffic(state, "digits-forest") == {"v2": 100}
    assert labels_taken(promoted) >= 30  # minSamples

    apply(local, folder, forest("v3", forests["v3"]))
    answers = label_until(local, phase("v3"), offset=500)
    state = local.status()
    rejected = event(state, "ShadowRejected")
    st = deployment(state, "digits-forest")["status"]
    v3 = next(v for v in st["versions"] if v["version"] == "v3")
    assert (v3["phase"], v3["reason"], v3["replicas"]) == ("Failed", "ShadowRejected", 0)
    assert traffic(state, "digits-forest") == {"v2": 100}
    assert labels_taken(rejected) >= 30  # minSamples

    # Not one caller saw v3: every answer is v2's, and no query was served by v3.
    pixels, _ = digits()
    v2 = joblib.load(forests["v2"]).predict(pixels[[a["row"] for a in answers]])
    assert [a["output"] for a in answers] == v2.tolist()
    stats = get(f"{local.url}/v1/stats/versions")
    served = [v for v in stats["versions"] if v["version"] == "v3"]
    assert sum(v["requests"] for v in served) == 0
    [pair] = [p for p in stats["shadows"] if p["candidate"] == "v3"]
    assert pair["mirrored"] > 0
    assert pair["losses"] > pair["wins"]
    shown = local.command("status", "--pid", str(local.pid)).stdout
    assert "ShadowRejected" in shown
    assert "rollout analysis" in shown
    assert st["analysis"]["verdict"] == "Failed"
    assert st["analysis"]["samples"] == labels_taken(rejected)
    print(f"labels: promotion {labels_taken(promoted)}, rejection {labels_taken(rejected)}")


def test_a_candidate_that_gets_no_labels_is_rejected_as_inconclusive_at_its_time_bound(
    run: tuple[LocalRun, Path], forests: dict[str, Path]
) -> None:
    """Callers that send no feedback: v2 is mirrored every query, but no label ever
    scores it, so at ``maxDurationSeconds`` it is rejected -- never promoted."""
    local, folder = run
    apply(local, folder, forest("v2", forests["v2"], shadow={"maxDurationSeconds": 3}))
    pixels, _ = digits()
    for row in range(20):  # answered by v1, mirrored to v2, never labelled
        assert not post_json(f"{local.url}/digits/predict", {"input": pixels[row].tolist()})[
            "default"
        ]
    local.wait_status(phase("v2"), timeout=120, what="v2's verdict")
    state = local.status()
    message = event(state, "ShadowInconclusive")
    assert "maxDurationSeconds=3" in message
    assert labels_taken(message) == 0
    st = deployment(state, "digits-forest")["status"]
    v2 = next(v for v in st["versions"] if v["version"] == "v2")
    assert (v2["phase"], v2["reason"], v2["replicas"]) == ("Failed", "ShadowInconclusive", 0)
    assert traffic(state, "digits-forest") == {"v1": 100}
    assert (st["analysis"]["verdict"], st["analysis"]["samples"]) == ("Failed", 0)
    assert "ShadowInconclusive" in local.command("status", "--pid", str(local.pid)).stdout


def test_keep_best_keeps_the_predecessor_up_until_the_labels_show_it_is_worse(
    run: tuple[LocalRun, Path], forests: dict[str, Path]
) -> None:
    """keepBest: 2 -- v2 promoted, v1 stays up as a challenger, still mirrored the
    queries; once the labels show it is worse than v2 it scales to zero."""
    local, folder = run
    apply(local, folder, forest("v2", forests["v2"], keepBest=2))
    label_until(local, phase("v2"))
    st = deployment(local.status(), "digits-forest")["status"]
    assert [c["version"] for c in st["challengers"]] == ["v1"]
    assert next(v for v in st["versions"] if v["version"] == "v1")["phase"] == "Shadowing"

    def v1_retained(status: dict[str, Any]) -> bool:
        versions = deployment(status, "digits-forest")["status"]["versions"]
        return any(v["version"] == "v1" and v["phase"] == "Retained" for v in versions)

    label_until(local, v1_retained, offset=700)
    state = local.status()
    assert "v1 is worse than v2" in event(state, "ShadowRejected")
    st = deployment(state, "digits-forest")["status"]
    assert st.get("challengers", []) == []
    assert traffic(state, "digits-forest") == {"v2": 100}
