"""The CRD's modelUri rule (mirrored for local mode): the storage schemes and nothing else."""

from __future__ import annotations

import pytest

from clipper.common.manifests import validate_object

DIGEST = "0f" * 32


def problems(uri: str) -> list[str]:
    doc = {
        "apiVersion": "clipper.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "digits"},
        "spec": {"version": "v1", "framework": "sklearn", "modelUri": uri},
    }
    return [error.message for error in validate_object(doc, "test.yaml")[1]]


@pytest.mark.parametrize(
    "uri",
    [
        "models/m.joblib",
        "../models/m.joblib",
        "file:///m.joblib",
        "image:///opt/m.joblib",
        "pvc://models/team/m.joblib",
        "https://h.example/m.joblib",
        f"http://h:8080/m.joblib?v=1#sha256={DIGEST}",
        f"s3://my-models/digits/m.joblib#sha256={DIGEST}",
    ],
)
def test_storage_uris_are_accepted(uri: str) -> None:
    assert problems(uri) == []


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://h/m.joblib",
        "gs://bucket/m.joblib",
        "s3://bucket",
        "pvc://claim",
        "image://relative/m.joblib",
        "https://h/m.joblib#sha256=abc",
        "s3://bucket//m.joblib",
        "s3://bucket/a/../m.joblib",
        "pvc://claim/..",
        "file:///models/./m.joblib",
    ],
)
def test_other_uris_are_refused_with_the_schemes_that_work(uri: str) -> None:
    (message,) = problems(uri)
    assert "spec.modelUri" in message
    assert "file://, image:///, pvc://CLAIM/PATH, http(s):// or s3://BUCKET/KEY URI" in message
