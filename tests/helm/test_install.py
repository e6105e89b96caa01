"""``helm install`` on the real control plane: the operator's Deployment becomes
Available, the chart's ServiceAccount can run the operator and can do nothing more,
and ``helm upgrade`` / ``helm uninstall`` leave no orphans (the CRDs stay, as Helm
keeps crds/).

kwok fakes the pods, so the operator itself runs as a local process with the token
of the chart's ServiceAccount (as tests/operator/test_cluster_rbac.py does with the
printed manifests). The tests share one release (an upgrade puts it back as it
was) in any order; the uninstall test installs a release of its own.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from clipper.operator.builders.install import discovery_rules, namespaced_rules
from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    APPS,
    MODELS,
    clipper_app,
    create,
    model_deployment,
    operator,
    service_account_kubeconfig,
    wait_ready,
)
from clipper.testing.k8s_helm import CHART, RELEASE, Helm, require_helm

ACCOUNT = "clipper-operator"
CUSTOM = CHART / "ci" / "custom-values.yaml"
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


def install_objects(k8s: ControlPlane, *namespaces: str) -> set[str]:
    """Every object that carries the release's labels, in these namespaces, and the
    cluster-wide ones named for the first (the install namespace)."""
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/managed-by=Helm"
    found = set()
    for ns in namespaces:
        kinds = "serviceaccounts,deployments,roles,rolebindings,poddisruptionbudgets,configmaps"
        out = k8s.kubectl("get", kinds, "-n", ns, "-l", selector, "-o", "name").stdout
        found |= {f"{ns}/{name}" for name in out.split()}
    wide = k8s.kubectl("get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name")
    return found | {n for n in wide.stdout.split() if namespaces[0] in n}


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
        wait_ready(k8s, ns, APPS, "digits", proc, timeout=120)
        for name in ("digits-a", "digits-b"):
            md = wait_ready(k8s, ns, MODELS, name, proc)
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


ROW = re.compile(r"^(\S*)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$")


def shown(grants: set[Grant]) -> set[tuple[str, str]]:
    """Grants as ``kubectl auth can-i --list`` names them: ``resource.group/sub``, verb."""

    def name(group: str, resource: str) -> str:
        base, slash, sub = resource.partition("/")
        return f"{base}.{group}{slash}{sub}" if group else resource

    return {(name(g, r), v) for g, r, v in grants}


def can_i_list(k8s: ControlPlane, kubeconfig: Path, namespace: str) -> set[tuple[str, str]]:
    """``kubectl auth can-i --list`` as the ServiceAccount itself: (resource, verb)."""
    argv = [str(k8s.kubectl_path), f"--kubeconfig={kubeconfig}", "auth", "can-i", "--list",
            "-n", namespace]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    rows = set()
    for line in out.splitlines()[1:]:
        match = ROW.match(line)
        assert match, f"unexpected line {line!r} in:\n{out}"
        resource, _urls, names, verbs = match.groups()
        assert not names, line  # no grant is limited to named objects
        if resource:
            rows |= {(resource, verb) for verb in verbs.split()}
    return rows


def test_can_i_list_shows_exactly_the_rules_of_install_py(
    k8s: ControlPlane, release: Release, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(k8s, release.home, ACCOUNT, tmp_path / "kubeconfig")
    everyone = granted_to_everyone(k8s)
    cluster_reads = grants(discovery_rules())
    watched = can_i_list(k8s, kubeconfig, release.watched)
    assert watched == shown(grants(namespaced_rules()) | cluster_reads | everyone)
    for elsewhere in (release.extra, release.home):
        assert can_i_list(k8s, kubeconfig, elsewhere) == shown(cluster_reads | everyone)
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
    left = install_objects(k8s, release.home, release.watched, release.extra)
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
    # A release of its own, so that the shared one stays for the other tests.
    home, watched = (k8s.create_namespace(p) for p in ("helm-gone", "helm-gone-watched"))
    try:
        release.helm.run(
            "install", RELEASE, str(CHART), "--namespace", home,
            "--set", f"watchNamespaces={{{watched}}}", "--wait", timeout=240,
        )  # fmt: skip
        installed = install_objects(k8s, home, watched)
        assert f"{watched}/role.rbac.authorization.k8s.io/{ACCOUNT}" in installed
        assert f"clusterrole.rbac.authorization.k8s.io/{ACCOUNT}:{home}:discovery" in installed
        release.helm.run("uninstall", RELEASE, "--namespace", home, "--wait", timeout=240)
        assert install_objects(k8s, home, watched) == set()
        secrets = k8s.kubectl("get", "secrets", "-n", home, "-o", "name").stdout
        assert "sh.helm.release" not in secrets
        crds = k8s.kubectl("get", "crd", "clipperapps.clipper.dev", "modeldeployments.clipper.dev")
        assert crds.returncode == 0
    finally:
        release.helm.run(
            "uninstall", RELEASE, "--namespace", home, "--ignore-not-found", check=False
        )
        for name in (home, watched):
            k8s.delete_namespace(name)


def test_non_default_values_render_objects_the_api_server_accepts(
    k8s: ControlPlane, release: Release
) -> None:
    # A namespace where nothing exists yet, so the dry run checks the objects as
    # rendered, not merged into the release's. The ServiceMonitor's CRD
    # (prometheus-operator) is not installed here; every other object is validated
    # by the API server itself.
    home = k8s.create_namespace("helm-dry-run")
    try:
        objects = release.helm.template(
            f"watchNamespaces={{{home}}}", namespace=home, values=[CUSTOM]
        )
        kinds = {o["kind"] for o in objects}
        assert {"Deployment", "PodDisruptionBudget", "ConfigMap", "ServiceMonitor"} <= kinds
        skip = ("ServiceMonitor", "CustomResourceDefinition")
        checked = [o for o in objects if o["kind"] not in skip]
        result = k8s.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(checked), check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("(server dry run)") == len(checked), result.stdout
    finally:
        k8s.delete_namespace(home)
