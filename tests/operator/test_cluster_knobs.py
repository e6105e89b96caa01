"""The knobs a platform team expects, on the real control plane: ``kubectl scale`` and
HorizontalPodAutoscalers through the scale subresource, the owner's labels on its
children, pod settings from ``spec.podTemplate``, and a PodDisruptionBudget per
version with more than one replica.

One operator in one namespace for the module; each test has ModelDeployments of its
own names, so the tests pass in any order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    MODELS,
    OperatorProcess,
    clipper_app,
    create,
    model_deployment,
    operator_namespace,
    patch_spec,
    read,
    wait_for_object,
)
from clipper.testing.processes import wait_for


@dataclass
class Scenario:
    namespace: str
    operator: OperatorProcess


@pytest.fixture(scope="module")
def knobs(
    k8s: ControlPlane, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    logs = tmp_path_factory.mktemp("operator-knobs")
    with operator_namespace(k8s, operator_kubeconfig, logs, "operator-knobs") as (namespace, proc):
        yield Scenario(namespace, proc)


def apply(k8s: ControlPlane, namespace: str, obj: dict[str, Any]) -> None:
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))


def deployment_when(
    k8s: ControlPlane, namespace: str, name: str, predicate: Callable[[Any], bool], what: str
) -> Any:
    apps = client.AppsV1Api(k8s.api)

    def check() -> Any:
        found = apps.read_namespaced_deployment(name, namespace)
        return found if predicate(found) else None

    return wait_for(check, timeout=60, interval=0.2, what=what)


def pods_of(k8s: ControlPlane, namespace: str, selector: str) -> set[str]:
    listed = client.CoreV1Api(k8s.api).list_namespaced_pod(namespace, label_selector=selector)
    return {pod.metadata.name for pod in listed.items if not pod.metadata.deletion_timestamp}


def budget(k8s: ControlPlane, namespace: str, name: str) -> Any | None:
    try:
        return client.PolicyV1Api(k8s.api).read_namespaced_pod_disruption_budget(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def ready(replicas: int) -> Callable[[Any], bool]:
    return lambda d: d.spec.replicas == replicas and (d.status.ready_replicas or 0) == replicas


def test_kubectl_scale_sizes_the_model_and_shows_its_selector(
    k8s: ControlPlane, knobs: Scenario
) -> None:
    ns = knobs.namespace
    create(k8s, ns, model_deployment("scaled"))
    deployment_when(k8s, ns, "scaled-v1", ready(1), "scaled-v1 with 1 ready replica")
    k8s.kubectl("scale", "-n", ns, "modeldeployment", "scaled", "--replicas=3")
    assert read(k8s, ns, MODELS, "scaled")["spec"]["replicas"] == 3
    deployment_when(k8s, ns, "scaled-v1", ready(3), "scaled-v1 scaled to 3 ready replicas")

    def scale() -> dict[str, Any] | None:
        printed = k8s.kubectl(
            "get", "-n", ns, "modeldeployment", "scaled", "--subresource=scale", "-o", "json"
        ).stdout
        found: dict[str, Any] = json.loads(printed)
        return found if found.get("status", {}).get("replicas") == 3 else None

    found = wait_for(scale, timeout=30, interval=0.2, what="the scale subresource's status")
    assert found["kind"] == "Scale"
    assert found["spec"]["replicas"] == 3
    assert found["status"]["selector"] == "clipper.dev/model=scaled"
    assert pods_of(k8s, ns, found["status"]["selector"]) == pods_of(
        k8s, ns, "clipper.dev/model=scaled,clipper.dev/version=v1"
    )


def test_a_horizontal_pod_autoscaler_finds_its_scale_target_and_scales_it(
    k8s: ControlPlane, knobs: Scenario
) -> None:
    ns = knobs.namespace
    create(k8s, ns, model_deployment("autoscaled"))
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "autoscaled"},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "clipper.dev/v1alpha1",
                "kind": "ModelDeployment",
                "name": "autoscaled",
            },
            # Below minReplicas the HPA scales without metrics (there is no
            # metrics-server here), which shows it can read and write the scale.
            "minReplicas": 2,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    apply(k8s, ns, hpa)
    autoscaling = client.AutoscalingV2Api(k8s.api)

    def able() -> Any:
        found = autoscaling.read_namespaced_horizontal_pod_autoscaler("autoscaled", ns)
        conditions = {c.type: c for c in found.status.conditions or []}
        able = conditions.get("AbleToScale")
        return found if able is not None and able.status == "True" else None

    found = wait_for(able, timeout=90, interval=0.5, what="the HPA AbleToScale")
    reasons = {c.type: c.reason for c in found.status.conditions}
    assert reasons["AbleToScale"] in ("SucceededGetScale", "SucceededRescale", "ReadyForNewScale")
    wait_for_object(
        k8s, ns, MODELS, "autoscaled", lambda md: md["spec"]["replicas"] == 2,
        "the HPA raising spec.replicas to its minimum", timeout=90, operator=knobs.operator,
    )  # fmt: skip
    deployment_when(k8s, ns, "autoscaled-v1", ready(2), "autoscaled-v1 with 2 ready replicas")


def test_the_owners_labels_reach_its_children_and_follow_changes(
    k8s: ControlPlane, knobs: Scenario
) -> None:
    ns = knobs.namespace
    md = model_deployment("labelled", replicas=2)
    md["metadata"]["labels"] = {"team": "search", "clipper.dev/reserved": "x"}
    create(k8s, ns, md)
    deployment = deployment_when(k8s, ns, "labelled-v1", ready(2), "labelled-v1 ready")
    service = client.CoreV1Api(k8s.api).read_namespaced_service("labelled-v1", ns)
    pdb = wait_for(lambda: budget(k8s, ns, "labelled-v1"), timeout=30, what="labelled-v1 PDB")
    for labels in (
        deployment.metadata.labels,
        deployment.spec.template.metadata.labels,
        service.metadata.labels,
        pdb.metadata.labels,
    ):
        assert labels["team"] == "search"
        assert "clipper.dev/reserved" not in labels
        assert labels["app.kubernetes.io/managed-by"] == "clipper-operator"
    mine = "clipper.dev/model=labelled"  # other tests' pods carry team labels too
    assert len(pods_of(k8s, ns, f"{mine},team=search")) == 2
    selector = {"clipper.dev/model": "labelled", "clipper.dev/version": "v1"}
    assert deployment.spec.selector.match_labels == selector

    k8s.kubectl("label", "-n", ns, "modeldeployment", "labelled", "team=ads", "--overwrite")
    deployment_when(
        k8s, ns, "labelled-v1",
        lambda d: d.metadata.labels.get("team") == "ads"
        and d.spec.template.metadata.labels.get("team") == "ads",
        "the Deployment relabelled team=ads",
    )  # fmt: skip
    wait_for(
        lambda: pods_of(k8s, ns, f"{mine},team=ads")
        and not pods_of(k8s, ns, f"{mine},team=search"),
        timeout=60, interval=0.2, what="the pods relabelled team=ads",
    )  # fmt: skip
    k8s.kubectl("label", "-n", ns, "modeldeployment", "labelled", "team-")
    deployment_when(
        k8s, ns, "labelled-v1", lambda d: "team" not in d.metadata.labels,
        "the label removed from the Deployment",
    )  # fmt: skip
    wait_for(
        lambda: "team" not in client.CoreV1Api(k8s.api)
        .read_namespaced_service("labelled-v1", ns).metadata.labels,
        timeout=30, interval=0.2, what="the label removed from the Service",
    )  # fmt: skip


def test_pod_template_settings_reach_the_pods_and_change_them_in_place(
    k8s: ControlPlane, knobs: Scenario
) -> None:
    ns = knobs.namespace
    priority = f"{ns}-serving"  # cluster-scoped: named for the namespace
    k8s.kubectl("create", "priorityclass", priority, "--value=1000")
    k8s.kubectl("create", "serviceaccount", "model-reader", "-n", ns)
    affinity = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"clipper.dev/model": "templated"}},
                    },
                }
            ]
        }
    }
    pod_template = {
        "metadata": {"labels": {"mesh": "on"}, "annotations": {"example.com/owner": "search"}},
        "spec": {
            "affinity": affinity,
            "priorityClassName": priority,
            "serviceAccountName": "model-reader",
            "imagePullSecrets": [{"name": "registry"}],
        },
    }
    try:
        create(k8s, ns, model_deployment("templated", podTemplate=pod_template))
        deployment_when(k8s, ns, "templated-v1", ready(1), "templated-v1 ready")
        (name,) = pods_of(k8s, ns, "clipper.dev/model=templated")
        pod = client.CoreV1Api(k8s.api).read_namespaced_pod(name, ns)
        assert pod.metadata.labels["mesh"] == "on"
        assert pod.metadata.annotations["example.com/owner"] == "search"
        assert pod.spec.priority_class_name == priority
        assert pod.spec.priority == 1000  # resolved by the Priority admission plugin
        assert pod.spec.service_account_name == "model-reader"
        assert pod.spec.automount_service_account_token is False
        assert [s.name for s in pod.spec.image_pull_secrets] == ["registry"]
        anti = pod.spec.affinity.pod_anti_affinity
        assert anti.preferred_during_scheduling_ignored_during_execution[0].weight == 100

        # Not part of the version: the Deployment rolls its pods, no rollout starts.
        pod_template["metadata"]["annotations"]["example.com/owner"] = "ads"
        patch_spec(k8s, ns, MODELS, "templated", {"podTemplate": pod_template})
        deployment_when(
            k8s, ns, "templated-v1",
            lambda d: d.spec.template.metadata.annotations["example.com/owner"] == "ads"
            and d.status.updated_replicas == 1 and (d.status.ready_replicas or 0) == 1,
            "templated-v1 rolled to the new annotation",
        )  # fmt: skip
        status = read(k8s, ns, MODELS, "templated")["status"]
        assert [v["version"] for v in status["versions"]] == ["v1"]
        assert "candidateVersion" not in status
    finally:
        k8s.kubectl("delete", "priorityclass", priority, "--ignore-not-found")


def test_an_apps_labels_and_frontend_pod_template_reach_its_frontend(
    k8s: ControlPlane, knobs: Scenario
) -> None:
    ns = knobs.namespace
    create(k8s, ns, model_deployment("shop-model"))
    pod_template = {
        "metadata": {"labels": {"mesh": "on"}, "annotations": {"example.com/owner": "search"}},
        "spec": {"imagePullSecrets": [{"name": "registry"}]},
    }
    app = clipper_app("shop", ["shop-model"], frontend={"podTemplate": pod_template})
    app["metadata"]["labels"] = {"team": "search"}
    create(k8s, ns, app)
    frontend = deployment_when(
        k8s, ns, "shop-frontend", lambda d: (d.status.ready_replicas or 0) == 1,
        "shop-frontend ready",
    )  # fmt: skip
    pod = frontend.spec.template
    assert pod.metadata.labels["team"] == "search"
    assert pod.metadata.labels["mesh"] == "on"
    assert pod.metadata.annotations["example.com/owner"] == "search"
    assert [s.name for s in pod.spec.image_pull_secrets] == ["registry"]
    assert pod.spec.service_account_name == "shop-frontend"
    core = client.CoreV1Api(k8s.api)
    assert core.read_namespaced_service("shop", ns).metadata.labels["team"] == "search"
    account = core.read_namespaced_service_account("shop-frontend", ns)
    assert account.metadata.labels["team"] == "search"
    assert len(pods_of(k8s, ns, "clipper.dev/app=shop,mesh=on,team=search")) == 1


def test_a_missing_service_account_shows_in_the_deployments_conditions(
    k8s: ControlPlane, knobs: Scenario
) -> None:
    ns = knobs.namespace
    settings = {"spec": {"serviceAccountName": "not-created"}}
    create(k8s, ns, model_deployment("no-account", podTemplate=settings))
    deployment = deployment_when(
        k8s, ns, "no-account-v1",
        lambda d: any(c.type == "ReplicaFailure" for c in d.status.conditions or []),
        "the ReplicaFailure condition",
    )  # fmt: skip
    (failure,) = [c for c in deployment.status.conditions if c.type == "ReplicaFailure"]
    assert failure.reason == "FailedCreate"
    assert "not-created" in failure.message


@pytest.mark.parametrize(
    ("pod_template", "words"),
    [
        ({"metadata": {"annotations": {"clipper.dev/x": "note"}}}, "are reserved for the operator"),
        ({"metadata": {"labels": {"clipper.dev/model": "other"}}}, "are reserved for the operator"),
        (
            {"spec": {"affinity": {"nodeAfinity": {}}}},
            'unknown field "spec.podTemplate.spec.affinity.nodeAfinity"',
        ),
        ({"spec": {"serviceAccountName": "Reader"}}, "spec.podTemplate.spec.serviceAccountName"),
        ({"spec": {"priorityClassName": "a_b"}}, "spec.podTemplate.spec.priorityClassName"),
    ],
    ids=["reserved-annotation", "reserved-label", "affinity-typo", "account", "priority"],
)
def test_the_api_server_refuses_bad_pod_settings(
    k8s: ControlPlane, knobs: Scenario, pod_template: dict[str, Any], words: str
) -> None:
    bad = model_deployment("refused", podTemplate=pod_template)
    result = k8s.kubectl(
        "apply", "-n", knobs.namespace, "-f", "-", input=yaml.safe_dump(bad), check=False
    )
    assert result.returncode != 0
    assert words in result.stderr


def test_a_version_with_replicas_to_spare_gets_a_disruption_budget(
    k8s: ControlPlane, knobs: Scenario
) -> None:
    ns = knobs.namespace
    create(k8s, ns, model_deployment("guarded", replicas=2))
    deployment_when(k8s, ns, "guarded-v1", ready(2), "guarded-v1 with 2 ready replicas")

    def computed() -> Any:
        found = budget(k8s, ns, "guarded-v1")
        return found if found is not None and found.status.expected_pods == 2 else None

    pdb = wait_for(computed, timeout=60, interval=0.2, what="the disruption controller's status")
    assert pdb.spec.max_unavailable == 1
    assert pdb.metadata.owner_references[0].kind == "ModelDeployment"
    assert pdb.metadata.owner_references[0].name == "guarded"
    selector = ",".join(f"{k}={v}" for k, v in pdb.spec.selector.match_labels.items())
    version = pods_of(k8s, ns, "clipper.dev/model=guarded,clipper.dev/version=v1")
    assert len(version) == 2
    assert pods_of(k8s, ns, selector) == version
    wait_for(
        lambda: (found := budget(k8s, ns, "guarded-v1")) and found.status.disruptions_allowed == 1,
        timeout=60, interval=0.2, what="one disruption allowed",
    )  # fmt: skip

    patch_spec(k8s, ns, MODELS, "guarded", {"replicas": 1})
    wait_for(
        lambda: budget(k8s, ns, "guarded-v1") is None,
        timeout=60, interval=0.2, what="the budget deleted at one replica",
    )  # fmt: skip
    patch_spec(k8s, ns, MODELS, "guarded", {"replicas": 3})
    wait_for(
        lambda: budget(k8s, ns, "guarded-v1"),
        timeout=60, interval=0.2, what="the budget back at three replicas",
    )  # fmt: skip
