"""The operator repairs what it owns at once, and says so: deleted or edited children on
the real control plane.

The operator here resyncs once an hour (``--resync-seconds 3600``, given after the
helper's own 60 s, so it wins), far beyond every wait in this module (the helpers'
defaults: 30 s for an object, 15 s for Events, 60 s for a status). So a child that
is back within a wait was put back because its watch event reconciled its owner,
not by the resync.

One scenario for the module: ModelDeployment ``digits-logreg`` (one replica) and
ClipperApp ``digits`` over it. Each test leaves it healthy again, so they pass in
any order. The operator logs at DEBUG, one line per reconcile, which the quiet test
counts.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    APPS,
    GROUP,
    MODELS,
    VERSION,
    OperatorProcess,
    clipper_app,
    condition,
    create,
    events,
    model_deployment,
    operator_namespace,
    read,
    wait_for_events,
    wait_for_object,
)
from clipper.testing.processes import wait_for

log = logging.getLogger(__name__)

MODEL, APP = "digits-logreg", "digits"
MANAGED = "app.kubernetes.io/managed-by=clipper-operator"
RECONCILE = re.compile(r"reconcile (clipperapps|modeldeployments)/")
QUIET_SECONDS = 5.0
"""How long the quiet test watches a settled scenario for writes and reconciles."""

KINDS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "Deployment": (client.AppsV1Api, "deployment"),
    "Service": (client.CoreV1Api, "service"),
    "ServiceAccount": (client.CoreV1Api, "service_account"),
    "Role": (client.RbacAuthorizationV1Api, "role"),
    "RoleBinding": (client.RbacAuthorizationV1Api, "role_binding"),
    "NetworkPolicy": (client.NetworkingV1Api, "network_policy"),
    "PodDisruptionBudget": (client.PolicyV1Api, "pod_disruption_budget"),
}


@dataclass
class Scenario:
    k8s: ControlPlane
    namespace: str
    operator: OperatorProcess

    def call(self, kind: str, verb: str, name: str | None = None, *body: Any, **kw: Any) -> Any:
        """``<verb>_namespaced_<kind>([name,] namespace, [body])`` of the kind's API."""
        api, suffix = KINDS[kind]
        method = getattr(api(self.k8s.api), f"{verb}_namespaced_{suffix}")
        return method(*([name] if name else []), self.namespace, *body, **kw)

    def child(self, kind: str, name: str) -> Any | None:
        try:
            return self.call(kind, "read", name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def healthy(self, plural: str, name: str) -> dict[str, Any]:
        return wait_for_object(
            self.k8s, self.namespace, plural, name,
            lambda obj: condition(obj, "Ready").get("status") == "True"
            and condition(obj, "Degraded").get("status") == "False",
            f"{plural}/{name} Ready and not Degraded", operator=self.operator,
        )  # fmt: skip


@pytest.fixture(scope="module")
def scenario(
    k8s: ControlPlane, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    logs = tmp_path_factory.mktemp("operator-repair")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLIPPER_LOG_LEVEL", "DEBUG")  # the dispatcher's line per reconcile
        with operator_namespace(
            k8s, operator_kubeconfig, logs, "operator-repair", "--resync-seconds", "3600"
        ) as (namespace, proc):
            create(k8s, namespace, model_deployment(MODEL, replicas=2))  # 2: a budget
            create(k8s, namespace, clipper_app(APP, [MODEL]))
            found = Scenario(k8s, namespace, proc)
            found.healthy(MODELS, MODEL)
            found.healthy(APPS, APP)
            yield found


def reconciles(s: Scenario) -> int:
    return len(RECONCILE.findall(s.operator.logs()))


def settle(s: Scenario, window: float = 1.0) -> None:
    """Wait until the operator has reconciled nothing for ``window`` seconds, so that
    no reconcile that read the scenario before a change is still under way."""

    def still() -> bool | None:
        before = reconciles(s)
        time.sleep(window)
        return reconciles(s) == before or None

    wait_for(still, timeout=60, interval=0, what="the operator idle")


def owners_conditions_since(
    s: Scenario, plural: str, name: str, version: str
) -> list[tuple[str, str, str]]:
    """(type, reason, message) of every Ready and Degraded condition that the owner's
    status writes after ``version`` (its resourceVersion) carried: a watch from there
    replays each write, so a state that lasted a moment is not missed."""
    seen = []
    stream = watch.Watch().stream(
        client.CustomObjectsApi(s.k8s.api).list_namespaced_custom_object,
        GROUP, VERSION, s.namespace, plural, field_selector=f"metadata.name={name}",
        resource_version=version, timeout_seconds=2,
    )  # fmt: skip
    for event in stream:
        for kind in ("Ready", "Degraded"):
            found = condition(event["object"], kind)
            seen.append((kind, found.get("reason", ""), found.get("message", "")))
    return seen


def repaired(found: list[tuple[str, str, str]], child: str) -> list[str]:
    return [m for t, r, m in found if (t, r) == ("Normal", "Repaired") and child in m]


CHILDREN = [
    (MODELS, MODEL, "Service", "digits-logreg-v1"),
    (MODELS, MODEL, "Deployment", "digits-logreg-v1"),
    (MODELS, MODEL, "PodDisruptionBudget", "digits-logreg-v1"),
    (APPS, APP, "Service", "digits"),
    (APPS, APP, "Deployment", "digits-frontend"),
    (APPS, APP, "ServiceAccount", "digits-frontend"),
    (APPS, APP, "Role", "digits-frontend"),
    (APPS, APP, "RoleBinding", "digits-frontend"),
    (APPS, APP, "NetworkPolicy", "digits-models"),
]


def test_a_settled_scenario_costs_no_writes_and_no_reconciles(scenario: Scenario) -> None:
    s = scenario

    def snapshot() -> dict[str, str]:
        versions = {
            f"{kind}/{item.metadata.name}": item.metadata.resource_version
            for kind in KINDS
            for item in s.call(kind, "list", None, label_selector=MANAGED).items
        }
        for plural, name in ((MODELS, MODEL), (APPS, APP)):
            versions[name] = read(s.k8s, s.namespace, plural, name)["metadata"]["resourceVersion"]
            versions[f"{name} events"] = str(len(events(s.k8s, s.namespace, name)))
        return versions

    def quiet() -> tuple[dict[str, str], int] | None:
        before, count = snapshot(), reconciles(s)
        time.sleep(QUIET_SECONDS)
        return (before, reconciles(s) - count) if before == snapshot() else None

    # A hot loop (a reconcile whose own writes wake it) would never leave the
    # scenario quiet; once it is, a further window sees nothing at all.
    wait_for(quiet, timeout=60, interval=0, what="the settled scenario quiet")
    result = quiet()
    assert result is not None, "something wrote to the settled scenario"
    assert result[1] == 0, f"{result[1]} reconciles of a settled scenario"


@pytest.mark.parametrize(
    ("plural", "owner", "kind", "name"), CHILDREN, ids=[f"{c[2]}-{c[3]}" for c in CHILDREN]
)
def test_a_deleted_child_is_recreated_at_once_reported_and_recorded(
    scenario: Scenario, plural: str, owner: str, kind: str, name: str
) -> None:
    s = scenario
    old = s.child(kind, name)
    assert old is not None
    settle(s)  # so that the first reconcile to read the owner after the delete finds it gone
    version = read(s.k8s, s.namespace, plural, owner)["metadata"]["resourceVersion"]
    start = time.monotonic()
    s.call(kind, "delete", name)
    wait_for(
        lambda: (new := s.child(kind, name)) is not None and new.metadata.uid != old.metadata.uid,
        what=f"{kind} {name} recreated",
    )
    # The measure: from the delete to the child back (this machine is shared).
    log.warning("%s %s recreated %.2f s after its deletion", kind, name, time.monotonic() - start)
    found = wait_for_events(
        s.k8s, s.namespace, owner, lambda found: bool(repaired(found, f"{kind} {name}")),
        f"a Repaired Event for {kind} {name}",
    )  # fmt: skip
    assert repaired(found, f"{kind} {name}") == [f"recreated {kind} {name}, which was missing"]
    s.healthy(plural, owner)
    said = owners_conditions_since(s, plural, owner, version)
    missing = ("Degraded", "ChildMissing", f"missing: {kind} {name} (being recreated)")
    assert missing in said
    serving = kind not in ("NetworkPolicy", "PodDisruptionBudget")
    assert (("Ready", *missing[1:]) in said) == serving


def test_an_edited_version_service_is_put_back(scenario: Scenario) -> None:
    s = scenario
    name = "digits-logreg-v1"
    s.call("Service", "patch", name, {"spec": {"selector": {"clipper.dev/version": "v9"}}})
    wait_for(
        lambda: s.child("Service", name).spec.selector["clipper.dev/version"] == "v1",
        what="the version Service's selector put back",
    )


def test_a_model_deployment_scaled_by_hand_is_scaled_back(scenario: Scenario) -> None:
    s = scenario
    name = "digits-logreg-v1"
    client.AppsV1Api(s.k8s.api).patch_namespaced_deployment_scale(
        name, s.namespace, {"spec": {"replicas": 0}}
    )
    wait_for(
        lambda: s.child("Deployment", name).spec.replicas == 2,
        what="the model Deployment scaled back to 2",
    )
    s.healthy(MODELS, MODEL)


def test_an_edited_frontend_role_is_put_back(scenario: Scenario) -> None:
    s = scenario
    name = "digits-frontend"
    rules = s.child("Role", name).rules
    assert rules
    s.call("Role", "patch", name, {"rules": []})
    wait_for(lambda: s.child("Role", name).rules == rules, what="the frontend's Role put back")
