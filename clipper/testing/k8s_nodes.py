"""The fake nodes of the test control plane: plain Node objects that kwok keeps alive.

kwok plays the kubelet for every Node carrying the ``kwok.x-k8s.io/node: fake``
annotation: it keeps the node Ready with a lease heartbeat and moves the pods bound to
it through Pending -> Running -> Ready, with a pod IP, so the real Deployment,
ReplicaSet and EndpointSlice controllers see what they would see on a real cluster.

One node advertises ``nvidia.com/gpu`` the way the NVIDIA device plugin makes a real
GPU node do (capacity, ``nvidia.com/gpu.present`` label), and carries the
``nvidia.com/gpu=present:NoSchedule`` taint that managed clusters put on GPU pools, so
a test sees both halves of GPU placement: a GPU pod needs a request *and* a
toleration, and an ordinary pod never lands on the expensive node.

Every node's InternalIP is 127.0.0.1: anything that tries to reach a "kubelet"
(``kubectl logs``) fails fast on this machine instead of sending traffic elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
#: Taints the control plane itself puts on a node that is not (yet) usable.
NOT_READY_TAINT_PREFIX = "node.kubernetes.io/"


@dataclass(frozen=True)
class FakeNode:
    name: str
    cpu: str = "16"
    memory: str = "64Gi"
    pods: str = "110"
    gpus: int = 0


DEFAULT_NODES = (
    FakeNode("kwok-node-0"),
    FakeNode("kwok-node-1"),
    FakeNode("kwok-gpu-0", cpu="32", memory="128Gi", gpus=2),
)


def node_manifest(node: FakeNode) -> dict[str, Any]:
    """The Node object for ``node``, status included (a kubelet registers it so too)."""
    resources = {"cpu": node.cpu, "memory": node.memory, "pods": node.pods}
    labels = {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    taints: list[dict[str, str]] = []
    if node.gpus:
        resources[GPU_RESOURCE] = str(node.gpus)
        labels[GPU_LABEL] = "true"
        taints.append(GPU_TAINT)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": labels,
        },
        "spec": {"taints": taints},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": node.name},
            ],
        },
    }


def node_schedulable(node: Any) -> bool:
    """Ready, and free of the control plane's not-ready / unreachable taints."""
    conditions = (node.status and node.status.conditions) or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    taints = (node.spec and node.spec.taints) or []
    return ready and not any(t.key.startswith(NOT_READY_TAINT_PREFIX) for t in taints)
