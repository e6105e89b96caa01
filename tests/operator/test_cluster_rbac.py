"""Least privilege on the real control plane: installed for given namespaces, the
operator's ServiceAccount may act there and nowhere else, and that is enough to run.

The manifests are what ``clipper operator manifests --namespace W`` prints, applied
in an install namespace of their own; every check runs ``kubectl`` with the
ServiceAccount's own token, not as an administrator impersonating it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    APPS,
    MODELS,
    OPERATOR_ACCOUNT,
    clipper_app,
    create,
    model_deployment,
    operator,
    service_account_kubeconfig,
    wait_ready,
)
from clipper.testing.timeouts import scaled


@dataclass
class Install:
    home: str
    watched: str
    other: str
    kubeconfig: Path


@pytest.fixture(scope="module")
def install(
    k8s: ControlPlane, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Install]:
    # operator_kubeconfig: the CRDs are installed (the cluster-wide install is another
    # ServiceAccount, in clipper-system, and plays no part here).
    home, watched, other = (k8s.create_namespace(p) for p in ("op-home", "watched", "other"))
    printed = subprocess.run(
        [sys.executable, "-m", "clipper", "operator", "manifests",
         "--install-namespace", home, "--namespace", watched],
        capture_output=True, text=True, check=True, timeout=scaled(60),
    ).stdout  # fmt: skip
    keep = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    docs = [d for d in yaml.safe_load_all(printed) if d and d["kind"] in keep]
    k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    path = tmp_path_factory.mktemp("namespaced-operator") / "kubeconfig"
    yield Install(
        home, watched, other, service_account_kubeconfig(k8s, home, OPERATOR_ACCOUNT, path)
    )
    for name in (home, watched, other):
        k8s.delete_namespace(name)
    k8s.kubectl(
        "delete", "clusterrole,clusterrolebinding", f"clipper-operator:{home}:discovery",
        "--ignore-not-found",
    )  # fmt: skip


def can_i(k8s: ControlPlane, install: Install, *what: str) -> subprocess.CompletedProcess[str]:
    """``kubectl auth can-i`` with the operator's own token."""
    argv = [k8s.kubectl_path, f"--kubeconfig={install.kubeconfig}", "auth", "can-i", *what]
    return subprocess.run(argv, capture_output=True, text=True, timeout=scaled(60), check=False)


def test_it_may_apply_in_its_namespace_and_is_denied_outside(
    k8s: ControlPlane, install: Install
) -> None:
    allowed = [
        ("patch", "deployments.apps"),
        ("create", "deployments.apps"),
        ("delete", "deployments.apps"),
        ("patch", "networkpolicies.networking.k8s.io"),
        ("watch", "clipperapps.clipper.dev"),
    ]
    for verb, resource in allowed:
        result = can_i(k8s, install, verb, resource, "-n", install.watched)
        assert result.stdout.strip() == "yes", (verb, resource, result.stderr)
    status = can_i(
        k8s, install, "update", "modeldeployments.clipper.dev", "--subresource=status",
        "-n", install.watched,
    )  # fmt: skip
    assert status.stdout.strip() == "yes"
    denied = [
        (install.other, "patch", "deployments.apps"),
        (install.other, "create", "roles.rbac.authorization.k8s.io"),
        (install.other, "list", "pods"),
        (install.other, "watch", "clipperapps.clipper.dev"),
        (install.home, "patch", "deployments.apps"),
        (install.watched, "update", "deployments.apps"),  # apply is a patch
        (install.watched, "update", "modeldeployments.clipper.dev"),
        (install.watched, "delete", "pods"),
        (install.watched, "list", "secrets"),
    ]
    for namespace, verb, resource in denied:
        result = can_i(k8s, install, verb, resource, "-n", namespace)
        assert result.returncode != 0, (namespace, verb, resource)
        assert result.stdout.strip() == "no", (namespace, verb, resource)
    everywhere = can_i(k8s, install, "list", "deployments.apps", "--all-namespaces")
    assert everywhere.stdout.strip() == "no"
    crds = can_i(k8s, install, "list", "customresourcedefinitions.apiextensions.k8s.io")
    assert crds.stdout.strip() == "yes"  # the one cluster-wide grant
    print("\n$ kubectl auth can-i patch deployments.apps -n", install.other)
    print(can_i(k8s, install, "patch", "deployments.apps", "-n", install.other).stdout.strip())
    print("$ kubectl auth can-i update deployments.apps -n", install.watched)
    print(can_i(k8s, install, "update", "deployments.apps", "-n", install.watched).stdout.strip())
    print("$ kubectl auth can-i list deployments.apps --all-namespaces")
    print(everywhere.stdout.strip())


def test_the_namespaced_grants_are_enough_to_run_an_app(
    k8s: ControlPlane, install: Install, tmp_path: Path
) -> None:
    with operator(install.kubeconfig, install.watched, tmp_path) as proc:
        create(k8s, install.watched, model_deployment("digits-sklearn"))
        create(k8s, install.watched, clipper_app("digits", ["digits-sklearn"]))
        wait_ready(k8s, install.watched, APPS, "digits", proc, timeout=90)
        md = wait_ready(k8s, install.watched, MODELS, "digits-sklearn", proc)
        assert md["status"]["stableVersion"] == "v1"
        logs = proc.logs()
    assert "forbidden" not in logs.lower(), logs[-4000:]
    policies = k8s.kubectl("get", "networkpolicy", "-n", install.watched, "-o", "name").stdout
    assert policies.split() == ["networkpolicy.networking.k8s.io/digits-models"]
