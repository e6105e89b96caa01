"""Which children count as missing, and how the owner's conditions say so (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clipper.common import api, rollout
from clipper.operator.reconcile.apps import _missing as app_missing
from clipper.operator.reconcile.children import Child, mark_missing, recreated
from clipper.operator.reconcile.models import _missing as model_missing
from clipper.operator.reconcile.models import _Owned

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SERVICE = Child("Service", "digits-logreg-v1")


def healthy() -> list[api.Condition]:
    conditions: list[api.Condition] = []
    api.set_condition(conditions, "Ready", "True", "Serving", "v1 serves", NOW, 1)
    api.set_condition(conditions, "Degraded", "False", "Healthy", "fine", NOW, 1)
    return conditions


def test_a_missing_child_that_serving_needs_makes_the_owner_degraded_and_not_ready() -> None:
    conditions = healthy()
    mark_missing(conditions, [SERVICE], NOW, 1)
    ready, degraded = (
        api.find_condition(conditions, "Ready"),
        api.find_condition(conditions, "Degraded"),
    )
    assert ready is not None
    assert degraded is not None
    message = "missing: Service digits-logreg-v1 (being recreated)"
    assert (ready.status, ready.reason, ready.message) == ("False", "ChildMissing", message)
    assert (degraded.status, degraded.reason, degraded.message) == ("True", "ChildMissing", message)


def test_a_missing_child_that_serving_does_not_need_only_degrades() -> None:
    conditions = healthy()
    mark_missing(conditions, [Child("NetworkPolicy", "digits-models", serving=False)], NOW, 1)
    assert [(c.type, c.status) for c in conditions] == [("Ready", "True"), ("Degraded", "True")]


def test_nothing_missing_changes_nothing() -> None:
    conditions = healthy()
    mark_missing(conditions, [], NOW, 1)
    assert conditions == healthy()


def test_an_object_applied_with_a_new_uid_was_recreated() -> None:
    assert recreated({"metadata": {"uid": "a"}}, {"metadata": {"uid": "b"}})
    assert not recreated({"metadata": {"uid": "a"}}, {"metadata": {"uid": "a"}})
    assert not recreated(None, {"metadata": {"uid": "b"}})  # absent when read: "missing"


# --- a model's versions ----------------------------------------------------------------


def model(status: api.ModelDeploymentStatus | None = None) -> api.ModelDeployment:
    md = api.ModelDeployment.model_validate(
        {
            "metadata": {"name": "digits-logreg", "namespace": "ml", "uid": "u", "generation": 1},
            "spec": {"version": "v1", "framework": "sklearn", "modelUri": "/m.joblib"},
        }
    )
    return md if status is None else md.model_copy(update={"status": status})


def child(kind: str, version: str = "v1") -> dict[str, Any]:
    labels = {"clipper.dev/model": "digits-logreg", "clipper.dev/version": version}
    return {"kind": kind, "metadata": {"name": f"digits-logreg-{version}", "labels": labels}}


def serving_model() -> api.ModelDeployment:
    """v1 stable and serving all traffic, as stored after its first rollout."""
    first = rollout.reconcile(model().spec, model().status, {}, NOW, 1)
    ready = {"v1": rollout.VersionObservation(ready_replicas=1)}
    md = model(first.status)
    return model(rollout.reconcile(md.spec, md.status, ready, NOW, 1).status)


def missing(md: api.ModelDeployment, have: _Owned) -> list[Child]:
    ready = {v: rollout.VersionObservation(ready_replicas=1) for v in have.deployments}
    return model_missing(md, rollout.reconcile(md.spec, md.status, ready, NOW, 1), have)


def test_a_serving_versions_deleted_service_is_missing_and_needed_to_serve() -> None:
    md = serving_model()
    assert md.status.traffic[0].version == "v1"
    have = _Owned([child("Deployment")], [], [], [])
    assert missing(md, have) == [Child("Service", "digits-logreg-v1", serving=True)]
    assert missing(md, _Owned([], [child("Service")], [], [])) == [
        Child("Deployment", "digits-logreg-v1", serving=True)
    ]
    assert missing(md, _Owned([child("Deployment")], [child("Service")], [], [])) == []


def test_a_version_not_yet_in_the_status_is_created_not_repaired() -> None:
    assert missing(model(), _Owned([], [], [], [])) == []


# --- an app's children -----------------------------------------------------------------


def app(status: dict[str, Any]) -> api.ClipperApp:
    return api.ClipperApp.model_validate(
        {
            "metadata": {"name": "digits", "namespace": "ml", "uid": "u"},
            "spec": {"models": ["digits-logreg"]},
            "status": status,
        }
    )


APP_CHILDREN = [
    {"kind": "ServiceAccount", "metadata": {"name": "digits-frontend"}},
    {"kind": "Service", "metadata": {"name": "digits"}},
    {"kind": "NetworkPolicy", "metadata": {"name": "digits-models"}},
]
ENDPOINT = {"http": "http://digits.ml.svc:8080", "grpc": "digits.ml.svc:8081"}


def test_a_new_apps_children_are_created_not_repaired() -> None:
    assert app_missing(app({}), APP_CHILDREN, {}) == []


def test_a_reconciled_apps_absent_children_are_missing() -> None:
    found = {("ServiceAccount", "digits-frontend"): {"kind": "ServiceAccount"}}
    with_models = app({"endpoint": ENDPOINT, "models": [{"name": "d", "modelName": "d"}]})
    assert app_missing(with_models, APP_CHILDREN, found) == [
        Child("Service", "digits"),
        Child("NetworkPolicy", "digits-models", serving=False),
    ]
    # The NetworkPolicy appears with the app's first model: before, it is new.
    without = app({"endpoint": ENDPOINT, "models": [{"name": "d"}]})
    assert app_missing(without, APP_CHILDREN, found) == [Child("Service", "digits")]
