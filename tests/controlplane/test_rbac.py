"""RBAC is on: an identity can do only what a binding grants it."""

from __future__ import annotations

import pytest
from kubernetes import client

from clipper.testing.controlplane import ControlPlane
from clipper.testing.processes import wait_for

pytestmark = pytest.mark.controlplane


def test_service_account_needs_a_role_binding_to_list_pods(
    k8s: ControlPlane, namespace: str
) -> None:
    who = f"--as=system:serviceaccount:{namespace}:default"

    denied = k8s.kubectl("get", "pods", "-n", namespace, who, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()

    rbac = client.RbacAuthorizationV1Api(k8s.api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
        },
    )

    # The authorizer sees the new binding through a watch, a moment later.
    wait_for(
        lambda: k8s.kubectl("get", "pods", "-n", namespace, who, check=False).returncode == 0,
        timeout=30,
        interval=0.2,
        what="the RoleBinding to take effect",
    )
    # ...and nothing more than the Role says.
    assert (
        k8s.kubectl(
            "auth", "can-i", "delete", "pods", "-n", namespace, who, check=False
        ).stdout.strip()
        == "no"
    )
