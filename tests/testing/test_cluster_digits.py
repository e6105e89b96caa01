"""The cluster version of the digits example, without a cluster: its manifests
validate as the API server's schema and rules would, every model is read through
the claim of storage.yaml, and the models trained for it are the files they name."""

from __future__ import annotations

from pathlib import Path

import yaml

from clipper.common import manifests
from clipper.common.storage import PvcUri, parse_uri
from clipper.testing.cluster_digits import (
    APP,
    EXAMPLE,
    MANIFESTS,
    MODELS,
    STORAGE,
    ClusterDigits,
    node_models_path,
    train_models,
)
from clipper.testing.controlplane import ControlPlane


def claim_name() -> str:
    docs = [d for d in yaml.safe_load_all(STORAGE.read_text()) if d]
    (claim,) = (d for d in docs if d["kind"] == "PersistentVolumeClaim")
    (volume,) = (d for d in docs if d["kind"] == "PersistentVolume")
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert claim["spec"]["storageClassName"] == volume["spec"]["storageClassName"] == ""
    return str(claim["metadata"]["name"])


def test_the_example_validates_and_reads_every_model_from_the_claim(tmp_path: Path) -> None:
    swaps = sorted((EXAMPLE / "swap").glob("*.yaml"))
    found = manifests.load(*MANIFESTS)
    assert [app.metadata.name for app in found.apps] == [APP]
    assert found.apps[0].spec.models == list(MODELS)
    deployments = [*found.deployments, *(manifests.load(p).deployments[0] for p in swaps)]
    uris = [parse_uri(d.spec.model_uri or "") for d in deployments]
    assert all(isinstance(uri, PvcUri) for uri in uris), uris
    assert {uri.claim for uri in uris if isinstance(uri, PvcUri)} == {claim_name()}

    accuracy = train_models(tmp_path / "models")
    files = {uri.path for uri in uris if isinstance(uri, PvcUri)}
    assert files <= set(accuracy), (files, accuracy)
    # forest-v3 is the example's deliberately worse version (the Shadow walk-through
    # rejects it); every model the cluster example serves is a real classifier.
    worse = "digits-forest-v3.joblib"
    assert all(score > 0.8 for name, score in accuracy.items() if name != worse), accuracy
    assert accuracy[worse] < accuracy["digits-forest-v2.joblib"], accuracy
    assert (tmp_path / "models").stat().st_mode & 0o005 == 0o005  # others may read and enter


def test_the_volume_path_is_the_storage_manifests() -> None:
    assert node_models_path() == "/var/local/clipper-models"


def test_the_gpu_variant_asks_for_a_gpu_and_the_cuda_device() -> None:
    found = manifests.load(EXAMPLE / "gpu" / "mlp-cuda.yaml")
    (model,) = found.deployments
    assert model.spec.device == "cuda"
    assert model.spec.resources is not None
    assert model.spec.resources.limits == {"nvidia.com/gpu": 1}
    assert isinstance(parse_uri(model.spec.model_uri or ""), PvcUri)
    assert found.apps[0].spec.models == [model.metadata.name]


def test_the_example_is_accepted_by_a_real_api_server_and_its_claim_binds(
    k8s: ControlPlane, operator_kubeconfig: Path, namespace: str
) -> None:
    """On the test control plane (CRDs installed, so schema and CEL rules apply): the
    claim binds to the volume with no StorageClass, and every manifest passes a
    server-side dry run. Pods never run here: the e2e suite runs them."""
    example = ClusterDigits(k8s.kubectl, namespace)
    try:
        example.apply(STORAGE)
        claim = example.wait(
            "pvc", "digits-models", lambda o: o["status"].get("phase") == "Bound", "Bound"
        )
        assert claim["spec"]["volumeName"] == "digits-models"
        swaps = sorted((EXAMPLE / "swap").glob("*.yaml"))
        for path in (*MANIFESTS, *swaps, EXAMPLE / "gpu" / "mlp-cuda.yaml"):
            out = example.run("apply", "--dry-run=server", "-f", str(path))
            assert "(server dry run)" in out, out
    finally:
        k8s.kubectl("delete", "-n", namespace, "-f", str(STORAGE), "--ignore-not-found",
                    "--wait=false", check=False)  # fmt: skip
