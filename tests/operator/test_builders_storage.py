"""The model's way into the pod, by modelUri scheme: init container, emptyDir, PVC."""

from __future__ import annotations

from typing import Any

from clipper.common import api
from clipper.common.storage import DEFAULT_MAX_BYTES
from clipper.operator.builders import build_model_deployment
from clipper.operator.builders.meta import CONTAINER_SECURITY
from clipper.operator.settings import OperatorSettings

SETTINGS = OperatorSettings(model_image="model:cpu", model_image_cuda="model:cuda")
DIGEST = "ab" * 32


def pod_spec(uri: str, **spec: Any) -> dict[str, Any]:
    md = api.ModelDeployment.model_validate(
        {
            "metadata": {"name": "digits", "namespace": "ml", "uid": "uid-1"},
            "spec": {"version": "v1", "framework": "sklearn", "modelUri": uri, **spec},
        }
    )
    deployment = build_model_deployment(md, "v1", md.spec.template(), 1, SETTINGS)
    return dict(deployment["spec"]["template"]["spec"])


def served_uri(spec: dict[str, Any]) -> str:
    args = spec["containers"][0]["args"]
    return str(args[args.index("--uri") + 1])


def test_an_http_model_is_fetched_by_an_init_container_into_an_empty_dir() -> None:
    uri = f"https://models.example/digits/logistic.joblib#sha256={DIGEST}"
    spec = pod_spec(uri)
    (init,) = spec["initContainers"]
    assert init["name"] == "fetch-model"
    assert init["image"] == spec["containers"][0]["image"] == "model:cpu"
    assert init["command"] == ["clipper", "model", "fetch"]
    assert init["args"][:4] == ["--uri", uri, "--dest", "/mnt/models/logistic.joblib"]
    assert init["securityContext"] == spec["containers"][0]["securityContext"]
    assert init["securityContext"] == CONTAINER_SECURITY
    assert init["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert init["resources"]["limits"]["memory"] == "512Mi"
    assert init["volumeMounts"] == [{"name": "model-store", "mountPath": "/mnt/models"}]
    assert spec["volumes"] == [
        {"name": "model-store", "emptyDir": {"sizeLimit": str(DEFAULT_MAX_BYTES)}}
    ]
    model = spec["containers"][0]
    assert model["volumeMounts"] == [
        {"name": "model-store", "mountPath": "/mnt/models", "readOnly": True}
    ]
    assert served_uri(spec) == "/mnt/models/logistic.joblib"
    assert "env" not in init
    assert "envFrom" not in init


def test_an_s3_model_gets_its_endpoint_from_the_spec_and_credentials_from_a_secret() -> None:
    storage = {"s3": {"endpoint": "http://s3.storage:8333", "region": "eu-1", "secretName": "s3"}}
    spec = pod_spec("s3://models/digits/v1/model.joblib", storage=storage)
    (init,) = spec["initContainers"]
    assert init["env"] == [
        {"name": "AWS_ENDPOINT_URL_S3", "value": "http://s3.storage:8333"},
        {"name": "AWS_REGION", "value": "eu-1"},
    ]
    assert init["envFrom"] == [{"secretRef": {"name": "s3"}}]
    assert "envFrom" not in spec["containers"][0]  # the model server never sees the keys
    assert served_uri(spec) == "/mnt/models/model.joblib"


def test_a_pvc_model_is_mounted_read_only_and_read_in_place() -> None:
    spec = pod_spec("pvc://models-claim/digits/logistic.joblib")
    assert "initContainers" not in spec
    assert spec["volumes"] == [
        {
            "name": "model-pvc",
            "persistentVolumeClaim": {"claimName": "models-claim", "readOnly": True},
        }
    ]
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "model-pvc", "mountPath": "/mnt/pvc", "readOnly": True}
    ]
    assert served_uri(spec) == "/mnt/pvc/digits/logistic.joblib"


def test_an_image_model_and_a_plain_path_are_loaded_as_they_are() -> None:
    baked = pod_spec("image:///opt/models/logistic.joblib")
    assert served_uri(baked) == "/opt/models/logistic.joblib"
    plain = pod_spec("/models/logistic.joblib")
    assert served_uri(plain) == "/models/logistic.joblib"
    for spec in (baked, plain):
        assert "initContainers" not in spec
        assert "volumes" not in spec
        assert "volumeMounts" not in spec["containers"][0]


def test_a_uri_the_crd_would_refuse_goes_to_the_model_server_as_written() -> None:
    spec = pod_spec("s3://bucket/a/../m.joblib")  # stored before the CRD's rule, say
    assert served_uri(spec) == "s3://bucket/a/../m.joblib"
    assert "initContainers" not in spec
