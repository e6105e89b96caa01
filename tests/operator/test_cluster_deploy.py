"""An app and two models on the real control plane: what the operator creates, and how
it all goes away with its owners.

One scenario for the whole module (the operator and its objects take a few seconds
to come up): a ClipperApp over a CPU sklearn model and a GPU pytorch model, which
no test changes. The test that deletes everything deploys the same scenario again
in a namespace of its own, so the tests pass in any order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from clipper.operator.builders import drain
from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    APPS,
    MODELS,
    OperatorProcess,
    clipper_app,
    condition,
    create,
    model_deployment,
    operator_namespace,
    read,
    reasons,
    wait_for_events,
    wait_ready,
)
from clipper.testing.k8s_nodes import GPU_RESOURCE
from clipper.testing.processes import wait_for

MANAGED = "app.kubernetes.io/managed-by=clipper-operator"


@dataclass
class Scenario:
    namespace: str
    operator: OperatorProcess


@contextlib.contextmanager
def deploy(k8s: ControlPlane, kubeconfig: Path, logs: Path, name: str) -> Iterator[Scenario]:
    """The scenario in a new namespace, its operator running, the app Ready."""
    with operator_namespace(k8s, kubeconfig, logs, name) as (namespace, proc):
        sklearn = model_deployment("digits-sklearn", replicas=2, method="predict_proba")
        gpu = {"limits": {GPU_RESOURCE: 1}}
        torch = model_deployment(
            "mlp-torch", framework="pytorch", modelUri="/models/mlp.pt", resources=gpu
        )
        create(k8s, namespace, sklearn)
        create(k8s, namespace, torch)
        create(k8s, namespace, clipper_app("digits", ["digits-sklearn", "mlp-torch"]))
        wait_ready(k8s, namespace, APPS, "digits", proc, timeout=90)
        yield Scenario(namespace, proc)


@pytest.fixture(scope="module")
def deployed(
    k8s: ControlPlane, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    logs = tmp_path_factory.mktemp("operator-deploy")
    with deploy(k8s, operator_kubeconfig, logs, "operator-deploy") as scenario:
        yield scenario


@pytest.fixture
def deployed_alone(
    k8s: ControlPlane, operator_kubeconfig: Path, tmp_path: Path
) -> Iterator[Scenario]:
    """The scenario for a test that destroys it."""
    with deploy(k8s, operator_kubeconfig, tmp_path, "operator-delete") as scenario:
        yield scenario


def managed(k8s: ControlPlane, namespace: str, kind: str) -> dict[str, Any]:
    api = client.AppsV1Api(k8s.api) if kind == "deployment" else client.CoreV1Api(k8s.api)
    listed = getattr(api, f"list_namespaced_{kind}")(namespace, label_selector=MANAGED)
    return {item.metadata.name: item for item in listed.items}


def test_each_version_gets_a_deployment_and_a_headless_service(
    k8s: ControlPlane, deployed: Scenario
) -> None:
    deployments = managed(k8s, deployed.namespace, "deployment")
    services = managed(k8s, deployed.namespace, "service")
    assert set(deployments) == {"digits-frontend", "digits-sklearn-v1", "mlp-torch-v1"}
    assert set(services) == {"digits", "digits-sklearn-v1", "mlp-torch-v1"}
    sklearn = deployments["digits-sklearn-v1"]
    assert sklearn.spec.replicas == 2
    assert sklearn.status.ready_replicas == 2
    args = sklearn.spec.template.spec.containers[0].args
    assert args[:6] == ["--framework", "sklearn", "--name", "digits-sklearn", "--version", "v1"]
    assert args[args.index("--uri") + 1] == "/models/digits-sklearn-v1.joblib"
    assert args[args.index("--method") + 1] == "predict_proba"
    owner = sklearn.metadata.owner_references[0]
    md = read(k8s, deployed.namespace, MODELS, "digits-sklearn")
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "ModelDeployment",
        "digits-sklearn",
        md["metadata"]["uid"],
        True,
    )
    headless = services["digits-sklearn-v1"]
    assert headless.spec.cluster_ip == "None"
    assert [p.name for p in headless.spec.ports] == ["grpc", "metrics"]
    frontend = services["digits"]
    assert frontend.spec.cluster_ip != "None"
    assert {p.name: p.port for p in frontend.spec.ports} == {"http": 8080, "grpc": 8081}


def test_a_gpu_model_lands_on_the_gpu_node_and_cpu_models_stay_off_it(
    k8s: ControlPlane, deployed: Scenario
) -> None:
    gpu_nodes = {node.name for node in k8s.nodes if node.gpus}
    core = client.CoreV1Api(k8s.api)

    def pods(model: str) -> list[Any]:
        selector = f"clipper.dev/model={model}"
        return list(core.list_namespaced_pod(deployed.namespace, label_selector=selector).items)

    (gpu_pod,) = pods("mlp-torch")
    assert gpu_pod.spec.node_name in gpu_nodes
    limits = gpu_pod.spec.containers[0].resources.limits
    assert limits[GPU_RESOURCE] == "1"
    cpu_pods = pods("digits-sklearn")
    assert len(cpu_pods) == 2
    assert all(p.spec.node_name and p.spec.node_name not in gpu_nodes for p in cpu_pods)


def test_statuses_report_readiness_traffic_and_the_endpoint(
    k8s: ControlPlane, deployed: Scenario
) -> None:
    md = read(k8s, deployed.namespace, MODELS, "digits-sklearn")
    status = md["status"]
    assert status["stableVersion"] == "v1"
    assert "candidateVersion" not in status
    assert status["traffic"] == [{"version": "v1", "weight": 100}]
    assert status["observedGeneration"] == md["metadata"]["generation"]
    (version,) = status["versions"]
    assert (version["phase"], version["replicas"], version["readyReplicas"]) == ("Serving", 2, 2)
    assert condition(md, "Ready")["status"] == "True"
    assert condition(md, "Available")["status"] == "True"
    assert condition(md, "Degraded")["status"] == "False"
    app = read(k8s, deployed.namespace, APPS, "digits")
    assert app["status"]["endpoint"] == {
        "http": f"http://digits.{deployed.namespace}.svc:8080",
        "grpc": f"digits.{deployed.namespace}.svc:8081",
    }
    assert app["status"]["readyModels"] == "2/2"
    assert app["status"]["observedGeneration"] == app["metadata"]["generation"]
    printed = k8s.kubectl("get", "mdep", "digits-sklearn", "-n", deployed.namespace).stdout
    assert printed.splitlines()[1].split()[1:5] == ["v1", "v1", "v1=100", "True"]


def test_events_announce_the_transitions(k8s: ControlPlane, deployed: Scenario) -> None:
    wait_for_events(
        k8s, deployed.namespace, "digits-sklearn",
        lambda found: reasons(found)[:2] == ["RolloutStarted", "Promoted"], "rollout Events",
    )  # fmt: skip
    wait_for_events(
        k8s, deployed.namespace, "digits",
        lambda found: "Ready" in reasons(found, "Normal"), "the app's Ready Event",
    )  # fmt: skip


def test_the_frontend_may_read_only_what_its_discovery_watches(
    k8s: ControlPlane, deployed: Scenario
) -> None:
    account = f"system:serviceaccount:{deployed.namespace}:digits-frontend"

    def can(*what: str) -> bool:
        result = k8s.kubectl(
            "auth", "can-i", *what, "-n", deployed.namespace, f"--as={account}", check=False
        )
        return result.stdout.strip() == "yes"

    assert can("watch", "modeldeployments.clipper.dev")
    assert can("list", "endpointslices.discovery.k8s.io")
    assert can("get", "clipperapps.clipper.dev/digits")
    assert not can("get", "clipperapps.clipper.dev/another-app")
    assert not can("patch", "modeldeployments.clipper.dev")
    assert can("patch", "clipperapps.clipper.dev/digits", "--subresource=status")
    assert not can("patch", "clipperapps.clipper.dev/digits")
    assert not can("patch", "clipperapps.clipper.dev/another-app", "--subresource=status")
    assert not can("list", "pods")
    assert not can("create", "deployments.apps")


def test_every_pod_sleeps_before_sigterm_and_has_the_time_to_drain(
    k8s: ControlPlane, deployed: Scenario
) -> None:
    # The API server stores the native preStop sleep (no shell in the images).
    core = client.CoreV1Api(k8s.api)
    pods = core.list_namespaced_pod(deployed.namespace, label_selector=MANAGED).items
    assert {p.metadata.labels["app.kubernetes.io/component"] for p in pods} == {
        "frontend",
        "model-server",
    }
    for pod in pods:
        (container,) = pod.spec.containers
        assert container.lifecycle.pre_stop.sleep.seconds == drain.PRESTOP_SLEEP_S
        component = pod.metadata.labels["app.kubernetes.io/component"]
        timings = drain.MODEL if component == "model-server" else drain.FRONTEND
        assert pod.spec.termination_grace_period_seconds == timings.termination_grace_s
    model_args = (
        managed(k8s, deployed.namespace, "deployment")["digits-sklearn-v1"]
        .spec.template.spec.containers[0]
        .args
    )
    assert model_args[model_args.index("--drain-delay-s") + 1] == "5"


def test_no_pod_the_operator_creates_is_best_effort(k8s: ControlPlane, deployed: Scenario) -> None:
    core = client.CoreV1Api(k8s.api)
    pods = core.list_namespaced_pod(deployed.namespace, label_selector=MANAGED).items
    assert len(pods) == 4  # the frontend, two sklearn replicas, one pytorch replica
    for pod in pods:
        assert pod.status.qos_class == "Burstable", pod.metadata.name
        requests = pod.spec.containers[0].resources.requests
        assert {"cpu", "memory"} <= set(requests), pod.metadata.name


def test_the_apps_models_admit_only_its_frontends(k8s: ControlPlane, deployed: Scenario) -> None:
    networking = client.NetworkingV1Api(k8s.api)
    policy = networking.read_namespaced_network_policy("digits-models", deployed.namespace)
    (owner,) = policy.metadata.owner_references
    assert (owner.kind, owner.name, owner.controller) == ("ClipperApp", "digits", True)
    (selector,) = policy.spec.pod_selector.match_expressions
    assert (selector.key, selector.operator, sorted(selector.values)) == (
        "clipper.dev/model",
        "In",
        ["digits-sklearn", "mlp-torch"],
    )
    (rule,) = policy.spec.ingress
    assert rule._from[0].pod_selector.match_labels == {
        "clipper.dev/app": "digits",
        "app.kubernetes.io/component": "frontend",
    }
    assert [p.port for p in rule.ports] == [8001]


def test_nothing_of_kopf_is_stored_on_the_objects(k8s: ControlPlane, deployed: Scenario) -> None:
    for plural, name in ((MODELS, "digits-sklearn"), (APPS, "digits")):
        meta = read(k8s, deployed.namespace, plural, name)["metadata"]
        assert not meta.get("finalizers")
        assert not [key for key in meta.get("annotations") or {} if "kopf" in key]


def test_deleting_the_app_and_the_models_cascades(
    k8s: ControlPlane, deployed_alone: Scenario
) -> None:
    deployed = deployed_alone
    custom = client.CustomObjectsApi(k8s.api)
    for plural, name in ((APPS, "digits"), (MODELS, "digits-sklearn"), (MODELS, "mlp-torch")):
        custom.delete_namespaced_custom_object("clipper.dev", "v1alpha1", deployed.namespace,
                                               plural, name)  # fmt: skip
    core, rbac = client.CoreV1Api(k8s.api), client.RbacAuthorizationV1Api(k8s.api)
    networking = client.NetworkingV1Api(k8s.api)

    def all_gone() -> bool:
        left = [
            *managed(k8s, deployed.namespace, "deployment"),
            *managed(k8s, deployed.namespace, "service"),
            *(p.metadata.name for p in core.list_namespaced_pod(deployed.namespace).items),
            *(r.metadata.name for r in rbac.list_namespaced_role(deployed.namespace).items),
            *(b.metadata.name for b in rbac.list_namespaced_role_binding(deployed.namespace).items),
            *(
                p.metadata.name
                for p in networking.list_namespaced_network_policy(deployed.namespace).items
            ),
        ]
        accounts = core.list_namespaced_service_account(deployed.namespace).items
        left += [a.metadata.name for a in accounts if a.metadata.name != "default"]
        return not left

    wait_for(all_gone, timeout=60, interval=0.2, what="everything the operator made collected")
