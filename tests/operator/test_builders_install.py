"""The operator's install manifests: CRDs, RBAC, Deployment."""

from __future__ import annotations

import pytest
import yaml

from clipper.common import api
from clipper.operator.builders import build_frontend_rbac
from clipper.operator.builders.install import (
    build_operator_rbac,
    install_manifests,
    namespaced_rules,
    operator_rules,
)
from clipper.operator.settings import OperatorSettings
from clipper.operator.watched import WATCHED, Watched


def granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_manifests_install_crds_rbac_and_one_replica_that_is_replaced_not_overlapped() -> None:
    text = install_manifests("clipper-system", OperatorSettings())
    assert "&id" not in text  # no YAML aliases: every object reads on its own
    docs = list(yaml.safe_load_all(text))
    kinds = [d["kind"] for d in docs]
    assert kinds[:2] == ["CustomResourceDefinition", "CustomResourceDefinition"]
    assert kinds[2:] == [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
    ]
    deployment = docs[-1]
    assert deployment["metadata"]["namespace"] == "clipper-system"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "clipper-operator"
    assert pod["containers"][0]["args"] == ["operator"]


def test_operator_holds_everything_it_grants_frontends() -> None:
    # Kubernetes lets a subject grant (in a Role) only what it holds itself.
    app = api.ClipperApp.model_validate(
        {"metadata": {"name": "a", "namespace": "n", "uid": "u"}, "spec": {"models": ["m"]}}
    )
    _, role, _ = build_frontend_rbac(app)
    assert granted(role["rules"]) <= granted(operator_rules())


def test_operator_may_write_what_it_creates_and_only_status_of_its_kinds() -> None:
    rules = granted(operator_rules())
    for group, resource in (
        ("apps", "deployments"),
        ("", "services"),
        ("", "serviceaccounts"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("networking.k8s.io", "networkpolicies"),
        ("policy", "poddisruptionbudgets"),
    ):
        # Server-side apply is a patch (a create when the object is new), never an update.
        assert {(group, resource, verb) for verb in ("create", "patch")} <= rules
        assert (group, resource, "update") not in rules
    for group, resource in (
        ("apps", "deployments"),
        ("", "services"),
        ("policy", "poddisruptionbudgets"),
    ):
        assert (group, resource, "delete") in rules  # a retired version's objects
    assert ("", "serviceaccounts", "delete") not in rules  # the garbage collector's job
    assert ("clipper.dev", "modeldeployments/status", "update") in rules
    assert ("clipper.dev", "modeldeployments", "update") not in rules
    assert ("", "pods", "delete") not in rules


def test_watching_given_namespaces_grants_roles_there_and_only_reads_cluster_wide() -> None:
    settings = OperatorSettings(namespaces=("team-a", "team-b"))
    docs = list(yaml.safe_load_all(install_manifests("clipper-system", settings)))
    rbac = [d for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io")]
    cluster = [d for d in rbac if d["kind"].startswith("Cluster")]
    assert [d["kind"] for d in cluster] == ["ClusterRole", "ClusterRoleBinding"]
    assert granted(cluster[0]["rules"]) == {
        (group, resource, verb)
        for group, resource in (
            ("apiextensions.k8s.io", "customresourcedefinitions"),
            ("", "namespaces"),
        )
        for verb in ("get", "list", "watch")
    }
    roles = {d["metadata"]["namespace"]: d for d in rbac if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"]: d for d in rbac if d["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    for ns, role in roles.items():
        assert granted(role["rules"]) == granted(namespaced_rules())
        assert bindings[ns]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "clipper-operator",
        }
        assert bindings[ns]["subjects"] == [
            {"kind": "ServiceAccount", "name": "clipper-operator", "namespace": "clipper-system"}
        ]
    deployment = docs[-1]
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["CLIPPER_OPERATOR_NAMESPACES"] == "team-a,team-b"


def test_the_pull_policy_reaches_the_operator_and_the_containers_it_creates() -> None:
    settings = OperatorSettings(image_pull_policy="Never")
    deployment = list(yaml.safe_load_all(install_manifests("ops", settings)))[-1]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["imagePullPolicy"] == "Never"
    assert env["CLIPPER_OPERATOR_IMAGE_PULL_POLICY"] == "Never"


@pytest.mark.parametrize("namespaces", [(), ("team-*",), ("prod", "team-?")])
def test_every_namespace_or_a_glob_needs_the_cluster_role(namespaces: tuple[str, ...]) -> None:
    (account, role, binding) = build_operator_rbac("ops", OperatorSettings(namespaces=namespaces))
    assert (account["kind"], role["kind"], binding["kind"]) == (
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    )
    assert granted(role["rules"]) == granted(operator_rules())
    assert ("", "namespaces", "list") in granted(role["rules"])
    assert binding["subjects"][0]["namespace"] == "ops"


def test_the_namespaced_rules_hold_what_frontends_are_granted() -> None:
    app = api.ClipperApp.model_validate(
        {"metadata": {"name": "a", "namespace": "n", "uid": "u"}, "spec": {"models": ["m"]}}
    )
    _, role, _ = build_frontend_rbac(app)
    assert granted(role["rules"]) <= granted(namespaced_rules())


@pytest.mark.parametrize("watched", WATCHED, ids=lambda w: w.plural)
def test_the_operator_may_list_and_watch_every_kind_it_watches(watched: Watched) -> None:
    # kopf lists, then watches, each kind of clipper.operator.watched: without both,
    # a deleted child would only come back at the resync.
    for rules in (granted(operator_rules()), granted(namespaced_rules())):
        assert {(watched.group, watched.plural, verb) for verb in ("list", "watch")} <= rules


def test_the_operator_is_ready_and_live_by_the_probe_endpoint_it_is_told_to_serve() -> None:
    docs = list(yaml.safe_load_all(install_manifests("clipper-system", OperatorSettings())))
    (container,) = docs[-1]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    endpoint = env["CLIPPER_OPERATOR_LIVENESS_ENDPOINT"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert endpoint == f"http://0.0.0.0:{ports[get['port']]}{get['path']}", probe
