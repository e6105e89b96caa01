"""The real controllers at work on kwok's nodes: rollouts, endpoints, GC, GPU placement."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_nodes import GPU_RESOURCE, GPU_TAINT
from clipper.testing.processes import wait_for

pytestmark = pytest.mark.controlplane

IMAGE = "clipper.invalid/never-pulled:1"  # kwok runs no containers


def container(**resources: str) -> dict[str, Any]:
    limits = {"resources": {"limits": resources}} if resources else {}
    return {"name": "main", "image": IMAGE, "ports": [{"containerPort": 8080}], **limits}


def gpu_nodes(k8s: ControlPlane) -> set[str]:
    return {n.name for n in k8s.nodes if n.gpus}


def test_deployment_rolls_out_and_its_endpointslice_lists_ready_pods(
    k8s: ControlPlane, namespace: str
) -> None:
    labels = {"app": "web"}
    apps, core = client.AppsV1Api(k8s.api), client.CoreV1Api(k8s.api)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container()]}},
            },
        },
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )

    def available() -> bool:
        status = apps.read_namespaced_deployment_status("web", namespace).status
        conditions = {c.type: c.status for c in status.conditions or []}
        return conditions.get("Available") == "True" and status.available_replicas == 2

    wait_for(available, timeout=90, interval=0.2, what="Deployment web Available with 2 replicas")

    def ready_endpoints() -> list[Any] | None:
        slices = client.DiscoveryV1Api(k8s.api).list_namespaced_endpoint_slice(
            namespace, label_selector="kubernetes.io/service-name=web"
        )
        endpoints = [e for s in slices.items for e in s.endpoints or []]
        ready = [e for e in endpoints if e.conditions.ready]
        return ready if len(ready) == 2 else None

    endpoints = wait_for(ready_endpoints, timeout=60, interval=0.2, what="2 ready endpoints")
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert {e.target_ref.name for e in endpoints} == {p.metadata.name for p in pods}
    assert all(p.status.pod_ip for p in pods)
    # The GPU node is tainted: ordinary pods never land on it.
    assert not {p.spec.node_name for p in pods} & gpu_nodes(k8s)


def test_deleting_an_owner_garbage_collects_what_it_owns(k8s: ControlPlane, namespace: str) -> None:
    core = client.CoreV1Api(k8s.api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "owned", "ownerReferences": [ref]}}
    )
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "owned-too", "ownerReferences": [ref]}}
    )

    core.delete_namespaced_config_map("owner", namespace)

    def collected() -> bool:
        config_maps = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
        secrets = {s.metadata.name for s in core.list_namespaced_secret(namespace).items}
        return "owned" not in config_maps and "owned-too" not in secrets

    wait_for(collected, timeout=60, interval=0.2, what="garbage collection of owned objects")


def gpu_pod(name: str, gpus: int) -> dict[str, Any]:
    toleration = {**GPU_TAINT, "operator": "Equal"}
    return {
        "metadata": {"name": name},
        "spec": {
            "containers": [container(**{GPU_RESOURCE: str(gpus)})],
            "tolerations": [toleration],
        },
    }


def test_pod_asking_for_a_gpu_lands_on_the_gpu_node_only(k8s: ControlPlane, namespace: str) -> None:
    core = client.CoreV1Api(k8s.api)
    capacity = max(n.gpus for n in k8s.nodes)
    core.create_namespaced_pod(namespace, gpu_pod("fits", gpus=1))
    core.create_namespaced_pod(namespace, gpu_pod("too-big", gpus=capacity + 1))

    def running(name: str) -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase == "Running" else None

    pod = wait_for(lambda: running("fits"), timeout=60, interval=0.2, what="GPU pod Running")
    assert pod.spec.node_name in gpu_nodes(k8s)

    def unschedulable() -> bool:
        status = core.read_namespaced_pod("too-big", namespace).status
        return any(
            c.type == "PodScheduled" and c.reason == "Unschedulable"
            for c in status.conditions or []
        )

    wait_for(unschedulable, timeout=60, interval=0.2, what="oversized GPU pod marked Unschedulable")
    assert core.read_namespaced_pod("too-big", namespace).spec.node_name is None
