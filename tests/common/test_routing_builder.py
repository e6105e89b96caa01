"""The routing table built from ClipperApps, ModelDeployments and their ready replicas."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clipper.common import api, manifests
from clipper.common.app_status import app_status
from clipper.common.errors import ConfigError
from clipper.common.routing_builder import app_config, routing_table

HERE = Path(__file__).parent / "manifests"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def with_traffic(md: api.ModelDeployment, **weights: int) -> api.ModelDeployment:
    status = api.ModelDeploymentStatus(
        traffic=[api.TrafficWeight(version=v, weight=w) for v, w in weights.items()],
        traffic_summary=" ".join(f"{v}={w}" for v, w in weights.items()),
        versions=[
            api.VersionStatus(
                version=v,
                phase="Serving",
                template=md.spec.template(),
                replicas=2,
                ready_replicas=2,
            )
            for v in weights
        ],
    )
    return md.model_copy(update={"status": status})


@pytest.fixture
def found() -> manifests.Manifests:
    return manifests.load(HERE / "digits.yaml")


def test_app_config_carries_the_apps_settings(found: manifests.Manifests) -> None:
    (app,) = found.apps
    echo, noop = found.deployments
    deployments = [with_traffic(echo, v1=100), with_traffic(noop, **{"2024-06-01": 100})]
    endpoints = {("digits-echo", "v1"): ["127.0.0.1:9001", "127.0.0.1:9002"]}
    config = app_config(app, deployments, endpoints)
    assert config.name == "digits"
    assert config.latency_slo_ms == 50.0
    assert config.default_output == {"label": -1, "scores": [0.1, 0.9]}
    assert config.selection.type == "exp4"
    assert config.selection.params == {"eta": 0.3, "loss": "zero_one"}
    assert config.confidence_threshold == 0.6
    assert (config.new_version.start, config.new_version.prior_observations) == ("predecessor", 25)
    assert (config.cache.enabled, config.cache.max_bytes) == (True, 1048576)
    assert config.input is not None
    assert config.input.shape == (64,)
    assert config.input.datatype == "FP64"
    assert config.input.name == "input"
    route = {m.name: m for m in config.models}
    assert list(route) == ["echo", "digits-noop"]  # modelName, in spec.models order
    (version,) = route["echo"].versions
    assert version.version == "v1"
    assert version.weight == 100.0
    assert version.replicas == ("127.0.0.1:9001", "127.0.0.1:9002")
    assert route["echo"].batching.max_batch_size == 32
    assert route["echo"].batching.batch_wait_ms == 1.5
    assert not route["echo"].batching.adaptive
    assert route["digits-noop"].versions == ()  # no ready replica: nothing to route to


def test_canary_weights_and_unready_versions(found: manifests.Manifests) -> None:
    (app,) = found.apps
    echo = with_traffic(found.deployments[0], v1=90, v2=10)
    both = {("digits-echo", "v1"): ["a:1"], ("digits-echo", "v2"): ["b:1"]}
    (route, _) = app_config(app, [echo, found.deployments[1]], both).models
    assert [(v.version, v.weight) for v in route.versions] == [("v1", 90.0), ("v2", 10.0)]
    only_v1 = {("digits-echo", "v1"): ["a:1"], ("digits-echo", "v2"): []}
    (route, _) = app_config(app, [echo, found.deployments[1]], only_v1).models
    assert [v.version for v in route.versions] == ["v1"]


def test_model_name_clash_is_a_config_error(found: manifests.Manifests) -> None:
    (app,) = found.apps
    echo, noop = found.deployments
    clash = noop.model_copy(update={"spec": noop.spec.model_copy(update={"model_name": "echo"})})
    with pytest.raises(ConfigError, match="both serve the model name 'echo'"):
        app_config(app, [echo, clash], {})


def test_routing_table_keys_apps_by_name() -> None:
    found = manifests.load(HERE)
    table = routing_table(found.apps, found.deployments, {})
    assert sorted(table.apps) == ["digits", "vision"]
    assert [m.name for m in table.apps["vision"].models] == ["resnet"]


def _summary(status: api.ClipperAppStatus) -> dict[str, Any]:
    conditions = {c.type: (c.status, c.reason) for c in status.conditions}
    return {"ready": status.ready_models, **conditions}


def test_app_status(found: manifests.Manifests) -> None:
    (app,) = found.apps
    echo, noop = found.deployments
    endpoint = api.Endpoint(http="http://127.0.0.1:18080", grpc="127.0.0.1:18081")
    status = app_status(app, [with_traffic(echo, v1=100), noop], endpoint, True, NOW)
    assert _summary(status) == {
        "ready": "1/2",
        "Ready": ("False", "ModelsNotServing"),
        "Degraded": ("False", "Healthy"),  # noop has not started yet: not degraded
    }
    assert status.models[0].traffic == "v1=100"
    assert status.models[0].ready_replicas == 2
    assert status.models[1].message == "no version serves yet"
    served = [with_traffic(echo, v1=100), with_traffic(noop, **{"2024-06-01": 100})]
    app.status = status
    later = app_status(app, served, endpoint, True, NOW.replace(hour=1))
    assert _summary(later) == {
        "ready": "2/2",
        "Ready": ("True", "Serving"),
        "Degraded": ("False", "Healthy"),
    }
    assert later.endpoint == endpoint
    assert app_status(app, served, endpoint, False, NOW).conditions[0].reason == "FrontendNotReady"
    missing = app_status(app, served[:1], endpoint, True, NOW)
    assert missing.models[1].message == "no such ModelDeployment"


def test_shadow_versions_are_routed_with_no_weight(found: manifests.Manifests) -> None:
    """A Shadow candidate and keepBest's challengers: mirrored, never picked."""
    (app,) = found.apps
    echo, _ = found.deployments
    md = with_traffic(echo, v2=100)
    md.status.shadow_version = "v3"
    md.status.challengers = [api.Challenger(version="v1"), api.Challenger(version="v0")]
    endpoints = {
        ("digits-echo", v): [f"127.0.0.1:900{i}"] for i, v in enumerate(["v1", "v2", "v3"])
    }
    config = app_config(app, [md], endpoints)
    routes = {v.version: (v.weight, v.shadow) for v in config.models[0].versions}
    assert routes == {"v2": (100.0, False), "v3": (0.0, True), "v1": (0.0, True)}  # v0: no replica
