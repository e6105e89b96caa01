"""Which frontends the operator reads for a ModelDeployment's canary analysis.

Pure parts of ``clipper.operator.fleet``: whether a canary is being judged, which
ClipperApps serve the model (by name or by label selector), and the URL of each
ready frontend pod. The read itself is ``clipper.common.fleet_stats``
(tests/common/test_fleet_stats.py, against real frontends).
"""

from __future__ import annotations

from typing import Any

from clipper.common import api
from clipper.operator.fleet import frontend_urls, judging, serving_apps


def model(**status: Any) -> api.ModelDeployment:
    return api.ModelDeployment.model_validate(
        {
            "metadata": {"name": "digits", "namespace": "ns", "labels": {"team": "a"}},
            "spec": {
                "version": "v2",
                "framework": "noop",
                "rollout": {"strategy": "Canary", "steps": [{"weight": 10}]},
            },
            "status": status,
        }
    )


def app(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec}


def pod(
    ip: str | None, ready: bool = True, deleting: bool = False, port: int | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"fe-{ip}"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    ports = [{"name": "grpc", "containerPort": 8081}]
    if port is not None:
        ports.append({"name": "http", "containerPort": port})
    spec = {"containers": [{"name": "frontend", "ports": ports}]}
    return {"metadata": meta, "spec": spec, "status": {"podIP": ip, "conditions": [condition]}}


def test_only_a_canary_with_a_stable_version_and_analysis_on_is_judged() -> None:
    assert judging(model(stableVersion="v1", candidateVersion="v2"))
    assert not judging(model(stableVersion="v1"))
    assert not judging(model(candidateVersion="v2"))  # a first deploy: nothing to compare
    off = model(stableVersion="v1", candidateVersion="v2")
    off.spec.rollout.analysis.enabled = False
    assert not judging(off)


def test_a_shadow_candidate_is_always_judged() -> None:
    shadow = model(stableVersion="v1", candidateVersion="v2")
    shadow.spec.rollout.strategy, shadow.spec.rollout.steps = "Shadow", None
    shadow.spec.rollout.analysis.enabled = False  # the canary gates; Shadow has its test
    assert judging(shadow)
    shadow.status.stable_version = None
    assert not judging(shadow)


def test_apps_that_name_or_select_the_model_serve_it() -> None:
    apps = [
        app("named", models=["digits"]),
        app("selected", modelSelector={"matchLabels": {"team": "a"}}),
        app("other", models=["forest"]),
        app("broken", models="not a list"),
    ]
    assert serving_apps(model(), apps) == ["named", "selected"]


def test_each_ready_frontend_pod_is_read_at_its_ip() -> None:
    pods = [
        pod("10.0.0.1"),
        pod("10.0.0.2", ready=False),
        pod(None),
        pod("10.0.0.3", deleting=True),
        pod("fd00::5"),
        pod("10.0.0.4", port=9000),
    ]
    assert frontend_urls(pods) == [
        "http://10.0.0.1:8080",
        "http://[fd00::5]:8080",
        "http://10.0.0.4:9000",  # the pod's own port named http
    ]
