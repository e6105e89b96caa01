"""``helm install`` on the real control plane: the operator's Deployment becomes
Available, the chart's ServiceAccount can run the operator and can do nothing more,
and ``helm upgrade`` / ``helm uninstall`` leave no orphans (the CRDs stay, as Helm
keeps crds/).

kwok fakes the pods, so the operator itself runs as a local process with the token
of the chart's ServiceAccount (as tests/operator/test_cluster_rbac.py does with the
printed manifests). The tests share one release and run in file order: install,
use, upgrade, uninstall.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clipper.operator.builders.install import discovery_rules, namespaced_rules
from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    APPS,
    MODELS,
    clipper_app,
    condition,
    create,
    model_deployment,
    operator,
    service_account_kubeconfig,
    wait_for_object,
)
from clipper.testing.k8s_helm import CHART, RELEASE, Helm, require_helm

ACCOUNT = "clipper-operator"
Grant = tuple[str, str, str]


@dataclass
class Release:
    helm: Helm
    home: str
    watched: str
    extra: str
    install_seconds: float


@pytest.fixture(scope="module")
def release(k8s: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    helm = Helm(require_helm(), tmp_path_factory.mktemp("helm-install"), k8s.kubeconfig)
    home, watched, extra = (
        k8s.create_namespace(p) for p in ("helm-home", "helm-watched", "helm-extra")
    )
    try:
        started = time.monotonic()
        helm.run(
            "install", RELEASE, str(CHART), "--namespace", home,
            "--set", f"watchNamespaces={{{watched}}}", "--wait", "--timeout", "180s",
            timeout=240,
        )  # fmt: skip
        seconds = time.monotonic() - started
        print(f"\nhelm install --wait: the operator's Deployment Available after {seconds:.1f} s")
        yield Release(helm, home, watched, extra, seconds)
    finally:
        helm.run("uninstall", RELEASE, "--namespace", home, "--ignore-not-found", check=False)
        for name in (home, watched, extra):
            k8s.delete_namespace(name)


def install_objects(k8s: ControlPlane, release: Release) -> set[str]:
    """Every object that carries the release's labels, in its namespaces and cluster-wide."""
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/managed-by=Helm"
    found = set()
    for ns in (release.home, release.watched, release.extra):
        kinds = "serviceaccounts,deployments,roles,rolebindings,poddisruptionbudgets,configmaps"
        out = k8s.kubectl("get", kinds, "-n", ns, "-l", selector, "-o", "name").stdout
        found |= {f"{ns}/{name}" for name in out.split()}
    out = k8s.kubectl("get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name")
    return found | {n for n in out.stdout.split() if release.home in n}


def test_install_makes_the_operator_deployment_available(
    k8s: ControlPlane, release: Release
) -> None:
    out = k8s.kubectl("get", "deployment", ACCOUNT, "-n", release.home, "-o", "json").stdout
    deployment = json.loads(out)
    conditions = {c["type"]: c["status"] for c in deployment["status"]["conditions"]}
    assert conditions["Available"] == "True"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == ACCOUNT
    status = release.helm.run("status", RELEASE, "--namespace", release.home).stdout
    assert "STATUS: deployed" in status


def test_the_chart_account_runs_an_app_with_two_models(
    k8s: ControlPlane, release: Release, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(k8s, release.home, ACCOUNT, tmp_path / "kubeconfig")
    ns = release.watched
    with operator(kubeconfig, ns, tmp_path) as proc:
        for name in ("digits-a", "digits-b"):
            create(k8s, ns, model_deployment(name))
        create(k8s, ns, clipper_app("digits", ["digits-a", "digits-b"]))
        wait_for_object(
            k8s, ns, APPS, "digits",
            lambda app: condition(app, "Ready").get("status") == "True",
            "ClipperApp digits Ready", timeout=120, operator=proc,
        )  # fmt: skip
        for name in ("digits-a", "digits-b"):
            md = wait_for_object(
                k8s, ns, MODELS, name,
                lambda obj: condition(obj, "Ready").get("status") == "True",
                f"ModelDeployment {name} Ready", timeout=60, operator=proc,
            )  # fmt: skip
            assert md["status"]["stableVersion"] == "v1"
        logs = proc.logs()
    assert "forbidden" not in logs.lower(), logs[-4000:]


def grants(rules: list[dict[str, Any]]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def granted_to_everyone(k8s: ControlPlane) -> set[Grant]:
    """What the cluster's own bindings give every authenticated ServiceAccount."""
    everyone = {"system:authenticated", "system:serviceaccounts"}
    bindings = json.loads(k8s.kubectl("get", "clusterrolebindings", "-o", "json").stdout)
    found: set[Grant] = set()
    for binding in bindings["items"]:
        if any(
            s.get("kind") == "Group" and s["name"] in everyone
            for s in binding.get("subjects") or []
        ):
            role = k8s.kubectl(
                "get", "clusterrole", binding["roleRef"]["name"], "-o", "json"
            ).stdout
            found |= grants(json.loads(role).get("rules") or [])
    return found


def can_i_list(k8s: ControlPlane, kubeconfig: Path, namespace: str) -> set[Grant]:
    """``kubectl auth can-i --list`` as the ServiceAccount itself, as grants."""
    argv = [k8s.kubectl_path, f"--kubeconfig={kubeconfig}", "auth", "can-i", "--list",
            "-n", namespace, "-o", "json"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    return grants(json.loads(out).get("resourceRules") or [])


def test_can_i_list_shows_exactly_the_rules_of_install_py(
    k8s: ControlPlane, release: Release, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(k8s, release.home, ACCOUNT, tmp_path / "kubeconfig")
    everyone = granted_to_everyone(k8s)
    cluster_reads = grants(discovery_rules())
    watched = can_i_list(k8s, kubeconfig, release.watched)
    assert watched == grants(namespaced_rules()) | cluster_reads | everyone
    for elsewhere in (release.extra, release.home):
        assert can_i_list(k8s, kubeconfig, elsewhere) == cluster_reads | everyone
    print(f"\nkubectl auth can-i --list -n {release.watched}: {len(watched)} grants, as install.py")


def test_upgrade_adds_and_removes_namespaces_without_orphans(
    k8s: ControlPlane, release: Release
) -> None:
    upgrade = ("upgrade", RELEASE, str(CHART), "--namespace", release.home, "--wait")
    both = f"watchNamespaces={{{release.watched},{release.extra}}}"
    release.helm.run(*upgrade, "--set", both, timeout=240)
    roles = k8s.kubectl("get", "role", ACCOUNT, "-n", release.extra, "-o", "name").stdout
    assert roles.strip() == f"role.rbac.authorization.k8s.io/{ACCOUNT}"
    release.helm.run(*upgrade, "--set", f"watchNamespaces={{{release.watched}}}", timeout=240)
    left = install_objects(k8s, release)
    assert not {o for o in left if o.startswith(f"{release.extra}/")}, left
    deployment = json.loads(
        k8s.kubectl("get", "deployment", ACCOUNT, "-n", release.home, "-o", "json").stdout
    )
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["CLIPPER_OPERATOR_NAMESPACES"] == release.watched


def test_uninstall_leaves_only_the_crds(k8s: ControlPlane, release: Release) -> None:
    assert install_objects(k8s, release)
    release.helm.run("uninstall", RELEASE, "--namespace", release.home, "--wait", timeout=240)
    assert install_objects(k8s, release) == set()
    secrets = k8s.kubectl("get", "secrets", "-n", release.home, "-o", "name").stdout
    assert "sh.helm.release" not in secrets
    crds = k8s.kubectl("get", "crd", "clipperapps.clipper.dev", "modeldeployments.clipper.dev")
    assert crds.returncode == 0
