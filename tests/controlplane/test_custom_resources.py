"""What the real API server does with a CRD: validation, defaulting, pruning, columns.

These run against the smoke tests' own ``Gadget`` CRD (gadget-crd.yaml), so they check
the control plane itself; tests/controlplane/test_clipper_crds.py checks crds/.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from clipper.testing.controlplane import ControlPlane
from clipper.testing.timeouts import scaled

pytestmark = pytest.mark.controlplane

CRD = Path(__file__).with_name("gadget-crd.yaml")
GROUP, VERSION, PLURAL = "smoke.clipper.test", "v1", "gadgets"


@pytest.fixture(scope="module")
def gadgets(k8s: ControlPlane) -> client.CustomObjectsApi:
    k8s.kubectl("apply", "-f", str(CRD))
    wait = f"--timeout={scaled(60):.0f}s"
    k8s.kubectl("wait", "--for=condition=Established", wait, "-f", str(CRD), timeout=90)
    return client.CustomObjectsApi(k8s.api)


def gadget(name: str, **spec: object) -> str:
    fields = [f"  {key}: {value}" for key, value in spec.items()]
    header = [f"apiVersion: {GROUP}/{VERSION}", "kind: Gadget", f"metadata:\n  name: {name}"]
    return "\n".join([*header, "spec:", *fields])


def test_kubectl_get_shows_printer_columns_and_defaults(
    k8s: ControlPlane, gadgets: client.CustomObjectsApi, namespace: str
) -> None:
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=gadget("g1", size=3))

    out = k8s.kubectl("get", "gadgets", "-n", namespace).stdout.splitlines()

    assert out[0].split() == ["NAME", "SIZE", "COLOUR", "PHASE"]
    # colour was defaulted by the API server from the schema.
    assert out[1].split()[:3] == ["g1", "3", "green"]


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ({"size": 50}, "spec.size"),
        ({"size": 2, "colour": "purple"}, "spec.colour"),
        ({"colour": "red"}, "spec.size: Required value"),
    ],
)
def test_api_server_rejects_objects_that_break_the_schema(
    k8s: ControlPlane,
    gadgets: client.CustomObjectsApi,
    namespace: str,
    spec: dict[str, object],
    complaint: str,
) -> None:
    result = k8s.kubectl(
        "apply", "-n", namespace, "-f", "-", input=gadget("bad", **spec), check=False
    )

    assert result.returncode != 0
    assert complaint in result.stderr
    assert "is invalid" in result.stderr
    # Nothing was stored, and a good object is still accepted afterwards.
    assert gadgets.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"] == []
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=gadget("good", size=2))


def test_unknown_fields_are_pruned_and_status_is_a_subresource(
    gadgets: client.CustomObjectsApi, namespace: str
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Gadget",
        "metadata": {"name": "g2"},
        "spec": {"size": 4, "flavour": "lemon"},
        "status": {"phase": "ignored on create"},
    }
    created = gadgets.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    assert "flavour" not in created["spec"]
    assert "status" not in created
    assert created["metadata"]["generation"] == 1

    patched = gadgets.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "g2", {"status": {"phase": "Ready"}}
    )
    assert patched["status"] == {"phase": "Ready"}
    assert patched["metadata"]["generation"] == 1  # status writes never bump generation

    spec_change = gadgets.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "g2", {"spec": {"size": 5}}
    )
    assert spec_change["metadata"]["generation"] == 2


def test_stale_update_gets_409_conflict(gadgets: client.CustomObjectsApi, namespace: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Gadget",
        "metadata": {"name": "g3"},
        "spec": {"size": 1},
    }
    stale = gadgets.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    gadgets.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "g3", {"spec": {"size": 2}}
    )

    stale["spec"]["size"] = 3
    with pytest.raises(ApiException) as excinfo:
        gadgets.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g3", stale)

    assert excinfo.value.status == 409


def test_server_side_apply_tracks_field_owners_and_reports_conflicts(
    k8s: ControlPlane, gadgets: client.CustomObjectsApi, namespace: str
) -> None:
    def apply(manager: str, size: int, *flags: str) -> subprocess.CompletedProcess[str]:
        return k8s.kubectl(
            "apply", "--server-side", f"--field-manager={manager}", *flags, "-n", namespace,
            "-f", "-", input=gadget("shared", size=size), check=False,
        )  # fmt: skip

    assert apply("alice", 3).returncode == 0
    conflict = apply("bob", 4)
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower()
    assert "alice" in conflict.stderr

    assert apply("bob", 4, "--force-conflicts").returncode == 0
    stored = gadgets.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "shared")
    assert stored["spec"]["size"] == 4
    owners = {
        m["manager"] for m in stored["metadata"]["managedFields"] if m["operation"] == "Apply"
    }
    assert "bob" in owners
