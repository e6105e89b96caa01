"""What ``helm template`` renders: hardened pods, RBAC scoped by the watched
namespaces, and the optional objects only when asked for."""

from __future__ import annotations

import json
from typing import Any

from clipper.testing.k8s_helm import CHART, Helm

CUSTOM = CHART / "ci" / "custom-values.yaml"


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    workloads = ("Deployment", "StatefulSet", "DaemonSet", "Job")
    return [o["spec"]["template"]["spec"] for o in objects if o["kind"] in workloads]


def test_every_pod_is_non_root_read_only_without_capabilities(helm: Helm) -> None:
    for objects in (helm.template(), helm.template(values=[CUSTOM])):
        specs = pod_specs(objects)
        assert specs
        for spec in specs:
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert spec.get("hostNetwork") is not True
            for container in spec["containers"] + spec.get("initContainers", []):
                security = container["securityContext"]
                assert security["allowPrivilegeEscalation"] is False
                assert security["capabilities"] == {"drop": ["ALL"]}
                assert security["readOnlyRootFilesystem"] is True
                assert container["resources"]["requests"]
                assert container["resources"]["limits"]["memory"]
            for volume in spec.get("volumes", []):  # writable space is bounded
                assert volume["emptyDir"]["sizeLimit"], volume


def test_exact_namespaces_get_roles_and_only_cluster_reads(helm: Helm) -> None:
    objects = helm.template("watchNamespaces={team-a,team-b}", namespace="ops")
    roles = by_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bindings = by_kind(objects, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "clipper-operator", "namespace": "ops"}
        ]
    [cluster_role] = by_kind(objects, "ClusterRole")
    assert cluster_role["metadata"]["name"] == "clipper-operator:ops:discovery"
    verbs = {v for rule in cluster_role["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}  # nothing written cluster-wide


def test_no_namespace_or_a_glob_is_cluster_wide(helm: Helm) -> None:
    for objects in (helm.template(), helm.template("watchNamespaces={team-*}")):
        assert not by_kind(objects, "Role")
        assert not by_kind(objects, "RoleBinding")
        [role] = by_kind(objects, "ClusterRole")
        assert role["metadata"]["name"] == "clipper-operator"
        resources = {r for rule in role["rules"] for r in rule["resources"]}
        assert "clusterkopfpeerings" in resources
        [binding] = by_kind(objects, "ClusterRoleBinding")
        assert binding["roleRef"]["name"] == "clipper-operator"


def test_pod_disruption_budget_selects_the_operator(helm: Helm) -> None:
    objects = helm.template()
    [deployment] = by_kind(objects, "Deployment")
    [pdb] = by_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert pdb["spec"]["maxUnavailable"] == 1  # one replica: a drain may still evict it
    [custom] = by_kind(helm.template(values=[CUSTOM]), "PodDisruptionBudget")
    assert custom["spec"] == {"minAvailable": 0, "selector": pdb["spec"]["selector"]}
    assert not by_kind(helm.template("podDisruptionBudget.enabled=false"), "PodDisruptionBudget")


def test_service_monitor_only_when_enabled(helm: Helm) -> None:
    assert not by_kind(helm.template(), "ServiceMonitor")
    [monitor] = by_kind(helm.template(values=[CUSTOM]), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    wide = by_kind(helm.template("serviceMonitor.enabled=true"), "ServiceMonitor")
    assert wide[0]["spec"]["namespaceSelector"] == {"any": True}


def test_dashboard_config_map_only_when_enabled(helm: Helm) -> None:
    assert not by_kind(helm.template(), "ConfigMap")
    [config_map] = by_kind(helm.template("dashboard.enabled=true"), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(config_map["data"]["clipper.json"])
    assert board == json.loads((CHART / "dashboards" / "clipper.json").read_text())


def test_images_default_to_the_app_version(helm: Helm) -> None:
    [deployment] = by_kind(helm.template(), "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["image"] == "clipper:0.1.0"
    assert env["CLIPPER_OPERATOR_FRONTEND_IMAGE"] == "clipper:0.1.0"
    assert env["CLIPPER_OPERATOR_MODEL_IMAGE"] == "clipper-model:0.1.0"
    [custom] = by_kind(helm.template(values=[CUSTOM]), "Deployment")
    [container] = custom["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/clipper:9.9.9"
    assert container["imagePullPolicy"] == "Always"


def test_created_containers_pull_as_the_operator_does_unless_told_otherwise(
    helm: Helm,
) -> None:
    def policies(*sets: str) -> tuple[str, str]:
        [deployment] = by_kind(helm.template(*sets), "Deployment")
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in container["env"]}
        return container["imagePullPolicy"], env["CLIPPER_OPERATOR_IMAGE_PULL_POLICY"]

    assert policies() == ("IfNotPresent", "IfNotPresent")
    assert policies("image.pullPolicy=Never") == ("Never", "Never")
    assert policies("defaultImages.pullPolicy=Never") == ("IfNotPresent", "Never")
