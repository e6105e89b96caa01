"""``helm uninstall`` leaves nothing but the CRDs (Helm keeps crds/).

Runs last (conftest.py orders the scenario). It first makes the operator create one
of every kind it creates -- an app with a two-replica model, so a
PodDisruptionBudget too -- and checks they exist, so the "nothing left" check below
is known to look at the right kinds. A user deletes their ClipperApps and
ModelDeployments first (their children follow by owner references; the operator
uses no finalizers), then uninstalls the chart.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from clipper.testing.cluster_digits import ClusterDigits, is_ready
from clipper.testing.k8s_helm import RELEASE
from clipper.testing.waiting import wait_for

NAMESPACE = "e2e-uninstall"
OPERATOR_KINDS = (
    "deployments.apps",
    "replicasets.apps",
    "pods",
    "services",
    "endpointslices",
    "serviceaccounts",
    "roles",
    "rolebindings",
    "networkpolicies",
    "poddisruptionbudgets",
)
"""Every kind the operator creates (operator/builders: Deployments and what they make,
Services and their EndpointSlices, the frontend's RBAC, NetworkPolicies, PDBs)."""
CHART_KINDS = (*OPERATOR_KINDS, "configmaps", "clusterroles", "clusterrolebindings")
BY_OPERATOR = "app.kubernetes.io/managed-by=clipper-operator"
BY_CHART = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/managed-by=Helm"
ECHO = """
apiVersion: clipper.dev/v1alpha1
kind: ModelDeployment
metadata: {name: echo}
spec:
  version: v1
  framework: noop
  replicas: 2
  resources: {requests: {cpu: 20m, memory: 64Mi}}
---
apiVersion: clipper.dev/v1alpha1
kind: ClipperApp
metadata: {name: echo}
spec:
  models: [echo]
  frontend: {resources: {requests: {cpu: 20m, memory: 64Mi}}}
"""


def labelled(cluster: Any, kinds: tuple[str, ...], selector: str) -> set[str]:
    """``namespace/kind/name`` of every object of ``kinds`` with the labels, cluster-wide."""
    out = cluster.kubectl("get", ",".join(kinds), "-A", "-l", selector, "-o", "json").stdout
    return {
        f"{o['metadata'].get('namespace', '')}/{o['kind']}/{o['metadata']['name']}"
        for o in json.loads(out)["items"]
    }


def _pods(cluster: Any, namespace: str) -> str:
    return str(cluster.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout.strip())


def test_helm_uninstall_leaves_nothing_but_the_crds(cluster: Any, release: Any) -> None:
    cluster.kubectl("create", "namespace", NAMESPACE)
    example = ClusterDigits(cluster.kubectl, NAMESPACE)
    try:
        cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=ECHO)
        example.wait("clipperapp", "echo", is_ready, "Ready", timeout=300)
        made = {entry.split("/")[1] for entry in labelled(cluster, OPERATOR_KINDS, BY_OPERATOR)}
        assert made >= {
            "Deployment",
            "ReplicaSet",
            "Pod",
            "Service",
            "EndpointSlice",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "NetworkPolicy",
            "PodDisruptionBudget",
        }, made

        cluster.kubectl(
            "delete",
            "clipperapps,modeldeployments",
            "--all",
            "-A",
            "--wait=true",
            timeout=180,
        )
        wait_for(
            lambda: not labelled(cluster, OPERATOR_KINDS, BY_OPERATOR),
            timeout=240,
            interval=1,
            what="the garbage collector removes what the operator made",
            seen=lambda: labelled(cluster, OPERATOR_KINDS, BY_OPERATOR),
        )
        assert labelled(cluster, CHART_KINDS, BY_CHART), "the chart's objects are there"
        release.uninstall()

        wait_for(
            lambda: not labelled(cluster, CHART_KINDS, BY_CHART),
            timeout=120,
            interval=1,
            what="nothing of the release left",
            seen=lambda: labelled(cluster, CHART_KINDS, BY_CHART),
        )
        assert not labelled(cluster, OPERATOR_KINDS, BY_OPERATOR)
        # The operator's pod stops within its grace period after its Deployment goes.
        wait_for(
            lambda: not _pods(cluster, "clipper-system"), timeout=120, interval=1,
            what="the operator's pod gone", seen=lambda: _pods(cluster, "clipper-system"),
        )  # fmt: skip
        crds = yaml.safe_load(cluster.kubectl("get", "crds", "-o", "yaml").stdout)["items"]
        names = {crd["metadata"]["name"] for crd in crds}
        assert {"clipperapps.clipper.dev", "modeldeployments.clipper.dev"} <= names
        instances = cluster.kubectl("get", "clipperapps,modeldeployments", "-A", "-o", "name")
        assert not instances.stdout.strip(), instances.stdout
    finally:
        cluster.kubectl(
            "delete", "namespace", NAMESPACE, "--ignore-not-found", check=False, timeout=240
        )
