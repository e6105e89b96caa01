"""Clipper's own CRDs (crds/) on a real API server: they install, kubectl prints their
columns, and the server enforces their schema, CEL rules included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from clipper.testing.controlplane import ControlPlane
from clipper.testing.timeouts import scaled

pytestmark = pytest.mark.controlplane

CRDS = Path(__file__).resolve().parents[2] / "crds"
#: The smallest valid spec of each kind; a new CRD in crds/ needs an entry here.
MINIMAL_SPECS: dict[str, dict[str, Any]] = {
    "ClipperApp": {"models": ["digits"]},
    "ModelDeployment": {"version": "v1", "framework": "noop"},
}


def load_crds() -> list[dict[str, Any]]:
    documents = []
    for path in sorted([*CRDS.glob("*.yaml"), *CRDS.glob("*.yml")]):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return [d for d in documents if d.get("kind") == "CustomResourceDefinition"]


def served_versions() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for crd in load_crds():
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                yield crd, version


def custom_object(crd: dict[str, Any], version: str, name: str, spec: Any) -> str:
    body = {
        "apiVersion": f"{crd['spec']['group']}/{version}",
        "kind": crd["spec"]["names"]["kind"],
        "metadata": {"name": name},
        "spec": spec,
    }
    return yaml.safe_dump(body)


def test_crds_folder_holds_every_kind_we_know() -> None:
    # Guards the tests below against passing on an empty folder.
    kinds = {crd["spec"]["names"]["kind"] for crd in load_crds()}
    assert kinds, f"{CRDS} holds no CustomResourceDefinition"
    assert kinds == set(MINIMAL_SPECS)


@pytest.fixture(scope="module")
def installed(k8s: ControlPlane) -> None:
    k8s.kubectl("apply", "-f", str(CRDS))
    for crd in load_crds():
        name = crd["metadata"]["name"]
        wait = f"--timeout={scaled(60):.0f}s"
        k8s.kubectl("wait", "--for=condition=Established", wait, f"crd/{name}", timeout=90)


@pytest.mark.usefixtures("installed")
def test_kubectl_get_prints_every_printer_column(k8s: ControlPlane, namespace: str) -> None:
    for crd, version in served_versions():
        names = crd["spec"]["names"]
        minimal = custom_object(crd, version["name"], "minimal", MINIMAL_SPECS[names["kind"]])
        k8s.kubectl("apply", "-n", namespace, "-f", "-", input=minimal)

        resource = f"{names['plural']}.{version['name']}.{crd['spec']['group']}"
        out = k8s.kubectl("get", resource, "-n", namespace, "-o", "wide").stdout.splitlines()

        columns = [c["name"].upper() for c in version.get("additionalPrinterColumns", [])]
        assert out[0].split() == ["NAME", *columns]
        assert out[1].split()[0] == "minimal"


@pytest.mark.usefixtures("installed")
def test_objects_that_break_a_crd_schema_are_rejected(k8s: ControlPlane, namespace: str) -> None:
    objects = client.CustomObjectsApi(k8s.api)
    for crd, version in served_versions():
        spec = crd["spec"]
        broken = custom_object(crd, version["name"], "broken", "not an object")

        result = k8s.kubectl("apply", "-n", namespace, "-f", "-", input=broken, check=False)

        assert result.returncode != 0, result.stdout
        assert "is invalid" in result.stderr
        assert "spec: Invalid value" in result.stderr
        listed = objects.list_namespaced_custom_object(
            spec["group"], version["name"], namespace, spec["names"]["plural"]
        )
        assert listed["items"] == []


@pytest.mark.usefixtures("installed")
def test_api_server_enforces_the_cel_rules(k8s: ControlPlane, namespace: str) -> None:
    # Only a real API server runs x-kubernetes-validations; check one rule end to end.
    crd = next(c for c in load_crds() if c["spec"]["names"]["kind"] == "ClipperApp")
    version = crd["spec"]["versions"][0]
    rules = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
    message = next(r["message"] for r in rules if "modelSelector" in r["rule"])
    both = {"models": ["a"], "modelSelector": {"matchLabels": {"app": "a"}}}

    result = k8s.kubectl(
        "apply", "-n", namespace, "-f", "-", check=False,
        input=custom_object(crd, version["name"], "both", both),
    )  # fmt: skip

    assert result.returncode != 0
    assert message in result.stderr


POLICY_CASES = [
    # (selectionPolicy, the field the API server names, words of its message)
    ({"type": "exp3", "parameters": {"epsilon": 0.2}}, "spec.selectionPolicy.parameters.epsilon",
     "epsilon is a parameter of the epsilon_greedy policy only"),
    ({"parameters": {"model": "m"}}, "spec.selectionPolicy.parameters.model",
     "model is a parameter of the fixed policy only"),
    ({"type": "exp3", "parameters": {"gamma": 1.5}}, "spec.selectionPolicy.parameters.gamma",
     "should be less than or equal to 1"),
    ({"type": "thompson", "parameters": {"prior_alpha": 0}},
     "spec.selectionPolicy.parameters.prior_alpha", "should be greater than 0"),
    ({"parameters": {"gama": 0.2}}, "spec.selectionPolicy.parameters.gama", "unknown field"),
]  # fmt: skip


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(("policy", "field", "words"), POLICY_CASES)
def test_api_server_rejects_bad_policy_parameters_naming_the_field(
    k8s: ControlPlane, namespace: str, policy: dict[str, Any], field: str, words: str
) -> None:
    crd = next(c for c in load_crds() if c["spec"]["names"]["kind"] == "ClipperApp")
    version = crd["spec"]["versions"][0]["name"]
    spec = {"models": ["a"], "selectionPolicy": policy}

    result = k8s.kubectl(
        "apply", "-n", namespace, "-f", "-", check=False,
        input=custom_object(crd, version, "policy", spec),
    )  # fmt: skip

    assert result.returncode != 0, result.stdout
    assert field in result.stderr
    assert words in result.stderr


@pytest.mark.usefixtures("installed")
def test_api_server_accepts_each_policys_own_parameters(k8s: ControlPlane, namespace: str) -> None:
    crd = next(c for c in load_crds() if c["spec"]["names"]["kind"] == "ClipperApp")
    version = crd["spec"]["versions"][0]["name"]
    policies = {
        "exp3": {"gamma": 0.2, "eta": 0.01, "loss": "absolute", "loss_scale": 2.0},
        "exp4": {"eta": 0.5, "output": "label", "agreement_rtol": 0.2, "agreement_atol": 0},
        "epsilon-greedy": {"epsilon": 0.05, "max_contexts": 10},
        "thompson": {"prior_alpha": 2, "prior_beta": 1.5, "bernoulli": True},
        "fixed": {"model": "a"},
    }
    for name, parameters in policies.items():
        policy = {"type": name.replace("-", "_"), "parameters": parameters}
        text = custom_object(crd, version, name, {"models": ["a"], "selectionPolicy": policy})
        k8s.kubectl("apply", "-n", namespace, "-f", "-", input=text)


@pytest.mark.usefixtures("installed")
def test_api_server_takes_several_frontend_workers_only_with_a_shared_state(
    k8s: ControlPlane, namespace: str
) -> None:
    crd = next(c for c in load_crds() if c["spec"]["names"]["kind"] == "ClipperApp")
    version = crd["spec"]["versions"][0]["name"]
    alone = {"models": ["a"], "frontend": {"workers": 2}}
    result = k8s.kubectl(
        "apply", "-n", namespace, "-f", "-", check=False,
        input=custom_object(crd, version, "alone", alone),
    )  # fmt: skip
    assert result.returncode != 0
    assert "spec.frontend.workers" in result.stderr
    assert "frontend.workers above 1 needs state.backend redis" in result.stderr
    shared = {**alone, "state": {"backend": "redis", "url": "redis://redis:6379/0"}}
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=custom_object(crd, version, "s", shared))
    one = {"models": ["a"], "frontend": {"workers": 1}}
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=custom_object(crd, version, "one", one))
