"""An app's conditions from its models' statuses, as the rollout machine writes them.

The models' statuses come from driving the real state machine (not written by
hand), so each case is a state a model really reaches: an app is Degraded only
when one of its models serves nothing; a failed rollout beside a serving stable
version leaves the app Ready, with the model's summary saying what failed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from clipper.common import api
from clipper.common.app_status import app_status
from clipper.common.rollout import VersionObservation
from clipper.testing.rollout import Controller, canary, make_spec, stable_on

NOW = datetime(2025, 1, 1, tzinfo=UTC)
ENDPOINT = api.Endpoint(http="http://127.0.0.1:18080")


def model(name: str, c: Controller) -> api.ModelDeployment:
    return api.ModelDeployment(
        metadata=api.ObjectMeta(name=name, generation=c.generation), spec=c.spec, status=c.status
    )


def app(*names: str) -> api.ClipperApp:
    return api.ClipperApp(
        metadata=api.ObjectMeta(name="shop", generation=3), spec={"models": list(names)}
    )  # type: ignore[arg-type]


def conditions(status: api.ClipperAppStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def message(status: api.ClipperAppStatus, kind: str) -> str:
    found = api.find_condition(status.conditions, kind)
    assert found is not None
    return found.message


def rolled_back() -> Controller:
    c = stable_on(Controller(spec=canary("v1", progressDeadlineSeconds=30)))
    c.apply(canary("v2", progressDeadlineSeconds=30))
    c.step(1)
    c.step(30)
    assert c.traffic() == {"v1": 100}
    return c


def test_a_model_that_rolled_back_but_serves_on_its_stable_version_leaves_the_app_ready() -> None:
    status = app_status(
        app("a", "b"), [model("a", rolled_back()), model("b", stable_on(Controller()))],
        ENDPOINT, True, NOW,
    )  # fmt: skip
    assert conditions(status) == {"Ready": ("True", "Serving"), "Degraded": ("False", "Healthy")}
    assert status.ready_models == "2/2"
    summary = status.models[0].message or ""
    assert summary.startswith("serves on v1; ProgressDeadlineExceeded: v2 was not ready")
    assert f"a: {summary}" in message(status, "Ready")
    assert all(c.observed_generation == 3 for c in status.conditions)


def test_a_model_whose_first_version_failed_degrades_the_app() -> None:
    c = Controller(spec=make_spec(progressDeadlineSeconds=30))
    c.step()
    c.step(30)
    status = app_status(app("a"), [model("a", c)], ENDPOINT, True, NOW)
    assert conditions(status) == {
        "Ready": ("False", "ModelsNotServing"),
        "Degraded": ("True", "ModelNotServing"),
    }
    assert "a: serves nothing; ProgressDeadlineExceeded" in message(status, "Degraded")


def test_a_model_that_lost_every_ready_replica_degrades_the_app() -> None:
    c = stable_on(Controller())
    c.observed["v1"] = VersionObservation(ready_replicas=0)
    c.step(1)
    status = app_status(app("a"), [model("a", c)], ENDPOINT, True, NOW)
    assert conditions(status)["Degraded"] == ("True", "ModelNotServing")
    assert message(status, "Degraded") == "a: no version serves yet"


def test_a_model_still_starting_its_first_version_is_not_ready_but_not_degraded() -> None:
    c = Controller()
    c.step()
    status = app_status(app("a"), [model("a", c)], ENDPOINT, True, NOW)
    assert conditions(status) == {
        "Ready": ("False", "ModelsNotServing"),
        "Degraded": ("False", "Healthy"),
    }


def test_a_missing_model_degrades_the_app() -> None:
    status = app_status(
        app("a", "ghost"), [model("a", stable_on(Controller()))], ENDPOINT, True, NOW
    )
    assert conditions(status)["Degraded"] == ("True", "ModelNotServing")
    assert message(status, "Degraded") == "ghost: no such ModelDeployment"


def test_a_refused_spec_beside_a_serving_version_leaves_the_app_ready() -> None:
    c = stable_on(Controller())
    c.apply(make_spec("v1", modelUri="models/other.joblib"))
    c.step(1)
    status = app_status(app("a"), [model("a", c)], ENDPOINT, True, NOW)
    assert conditions(status) == {"Ready": ("True", "Serving"), "Degraded": ("False", "Healthy")}
    assert "a: serves on v1; VersionImmutable: v1 already exists" in message(status, "Ready")
