"""The operator's install manifests: CRDs, RBAC, Deployment."""

from __future__ import annotations

import yaml

from clipper.common import api
from clipper.operator.builders import build_frontend_rbac
from clipper.operator.builders.install import install_manifests, operator_rules
from clipper.operator.settings import OperatorSettings


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
    ):
        assert {(group, resource, verb) for verb in ("create", "patch", "delete")} <= rules
    assert ("clipper.dev", "modeldeployments/status", "update") in rules
    assert ("clipper.dev", "modeldeployments", "update") not in rules
    assert ("", "pods", "delete") not in rules
