"""The model version builders: a Deployment and a headless Service per version."""

from __future__ import annotations

from typing import Any

import pytest

from clipper.common import api
from clipper.common.model_args import serve_args
from clipper.operator import naming
from clipper.operator.builders import (
    build_model_deployment,
    build_model_service,
    drain,
    template_hash,
)
from clipper.operator.settings import OperatorSettings

SETTINGS = OperatorSettings(model_image="model:cpu", model_image_cuda="model:cuda")


def model(**spec: Any) -> api.ModelDeployment:
    return api.ModelDeployment.model_validate(
        {
            "metadata": {"name": "digits", "namespace": "ml", "uid": "uid-1", "generation": 3},
            "spec": {"version": "v2", "framework": "sklearn", "modelUri": "/m.joblib", **spec},
        }
    )


def deployment(md: api.ModelDeployment, replicas: int = 2) -> dict[str, Any]:
    return build_model_deployment(md, "v2", md.spec.template(), replicas, SETTINGS)


def container(obj: dict[str, Any]) -> dict[str, Any]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_deployment_is_named_for_the_version_and_owned_by_the_model() -> None:
    md = model()
    obj = deployment(md)
    meta = obj["metadata"]
    assert (obj["kind"], meta["name"], meta["namespace"]) == ("Deployment", "digits-v2", "ml")
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "clipper.dev/v1alpha1",
            "kind": "ModelDeployment",
            "name": "digits",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    selector = {naming.LABEL_MODEL: "digits", naming.LABEL_VERSION: "v2"}
    assert obj["spec"]["selector"] == {"matchLabels": selector}
    pod_labels = obj["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert selector.items() <= meta["labels"].items()
    assert meta["labels"][naming.MANAGED_BY] == naming.COMPONENT
    assert obj["spec"]["replicas"] == 2


def test_an_object_read_without_a_uid_cannot_own_anything() -> None:
    md = model()
    md.metadata.uid = None
    with pytest.raises(ValueError, match="no uid"):
        deployment(md)


def test_container_runs_the_model_server_with_the_templates_arguments() -> None:
    md = model(method="predict_proba", modelName="digits-model", threads=2)
    main = container(deployment(md))
    assert main["command"] == ["clipper", "model", "serve"]
    expected = serve_args(
        md.spec.template(), name="digits-model", version="v2", port=8001, host="0.0.0.0",
        metrics_port=8002, extra=drain.model_server_flags(),
    )  # fmt: skip
    assert main["args"] == expected
    assert "--host" in main["args"]
    assert main["args"][main["args"].index("--host") + 1] == "0.0.0.0"
    assert main["image"] == "model:cpu"
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"grpc": 8001, "metrics": 8002}


def test_probes_use_the_model_servers_grpc_health_with_a_startup_budget() -> None:
    main = container(deployment(model()))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["grpc"] == {"port": 8001}
    startup = main["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= SETTINGS.model_startup_seconds


def test_template_env_resources_and_placement_reach_the_pod() -> None:
    md = model(
        env=[{"name": "CLIPPER_MODEL_OUTPUT_NAME", "value": "probabilities"}],
        resources={"limits": {"cpu": 2, "memory": "1Gi"}, "requests": {"cpu": "500m"}},
        nodeSelector={"pool": "inference"},
        tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
        ],
    )
    obj = deployment(md)
    pod = obj["spec"]["template"]["spec"]
    main = container(obj)
    assert main["env"] == [{"name": "CLIPPER_MODEL_OUTPUT_NAME", "value": "probabilities"}]
    assert main["resources"] == {
        "limits": {"cpu": "2", "memory": "1Gi"},
        "requests": {"cpu": "500m"},
    }
    assert pod["nodeSelector"] == {"pool": "inference"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    ]


def test_a_gpu_request_gets_equal_limits_a_toleration_and_the_cuda_image() -> None:
    md = model(framework="pytorch", modelUri="/mlp.pt", resources={"limits": {"nvidia.com/gpu": 1}})
    obj = deployment(md)
    main = container(obj)
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert main["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert main["image"] == "model:cuda"
    tolerations = obj["spec"]["template"]["spec"]["tolerations"]
    assert tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_a_gpu_toleration_the_user_gave_is_not_doubled() -> None:
    own = {"key": "nvidia.com/gpu", "operator": "Exists"}
    md = model(
        framework="onnx", modelUri="/m.onnx", resources={"requests": {"nvidia.com/gpu": 2}},
        tolerations=[own],
    )  # fmt: skip
    obj = deployment(md)
    assert obj["spec"]["template"]["spec"]["tolerations"] == [own]
    assert container(obj)["resources"]["limits"] == {"nvidia.com/gpu": "2"}


def test_an_image_in_the_spec_wins_over_the_defaults() -> None:
    md = model(framework="pytorch", modelUri="/m.pt", image="mine:1",
               resources={"limits": {"nvidia.com/gpu": 1}})  # fmt: skip
    assert container(deployment(md))["image"] == "mine:1"


def test_cpu_models_get_no_gpu_toleration() -> None:
    obj = deployment(model())
    assert obj["spec"]["template"]["spec"]["tolerations"] == []


def test_pods_run_restricted() -> None:
    obj = deployment(model())
    pod = obj["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    main = container(obj)
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_pods_carry_the_hash_of_their_template() -> None:
    md = model()
    template = md.spec.template()
    labels = deployment(md)["spec"]["template"]["metadata"]["labels"]
    assert labels[naming.LABEL_TEMPLATE_HASH] == template_hash(template)
    changed = template.model_copy(update={"model_uri": "/other.joblib"})
    assert template_hash(changed) != template_hash(template)
    assert template_hash(template.model_copy()) == template_hash(template)


def test_scaling_changes_only_the_replicas() -> None:
    md = model()
    up, down = deployment(md, replicas=3), deployment(md, replicas=0)
    assert (up["spec"]["replicas"], down["spec"]["replicas"]) == (3, 0)
    down["spec"]["replicas"] = 3
    assert down == up


def test_deployment_rolls_out_without_losing_capacity_within_the_deadline() -> None:
    spec = deployment(model(rollout={"progressDeadlineSeconds": 30}))["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["progressDeadlineSeconds"] == 30


def test_service_is_headless_with_a_named_grpc_port() -> None:
    md = model()
    svc = build_model_service(md, "v2")
    assert (svc["kind"], svc["metadata"]["name"]) == ("Service", "digits-v2")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == {naming.LABEL_MODEL: "digits", naming.LABEL_VERSION: "v2"}
    grpc = next(p for p in svc["spec"]["ports"] if p["name"] == "grpc")
    assert (grpc["port"], grpc["targetPort"], grpc["appProtocol"]) == (8001, "grpc", "grpc")
    # The EndpointSlice controller copies these onto the slices the frontend reads.
    assert svc["metadata"]["labels"][naming.LABEL_MODEL] == "digits"
    assert svc["metadata"]["labels"][naming.LABEL_VERSION] == "v2"
    assert svc["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_a_model_server_that_cannot_load_leaves_its_reason_in_the_pod_status() -> None:
    # e.g. device cuda without a GPU: the server exits 1 with one ERROR line.
    assert container(deployment(model()))["terminationMessagePolicy"] == "FallbackToLogsOnError"


POD_TEMPLATE = {
    "metadata": {
        "labels": {"sidecar.istio.io/inject": "true", naming.MANAGED_BY: "me"},
        "annotations": {"example.com/owner": "search", "prometheus.io/scrape": "false"},
    },
    "spec": {
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "topology.kubernetes.io/zone",
                            "labelSelector": {"matchLabels": {naming.LABEL_MODEL: "digits"}},
                        },
                    }
                ]
            }
        },
        "priorityClassName": "serving-high",
        "serviceAccountName": "model-reader",
        "imagePullSecrets": [{"name": "registry"}],
    },
}


def test_pod_template_settings_reach_every_versions_pods() -> None:
    md = model(podTemplate=POD_TEMPLATE)
    pod = deployment(md)["spec"]["template"]
    assert pod["spec"]["affinity"] == POD_TEMPLATE["spec"]["affinity"]
    assert pod["spec"]["priorityClassName"] == "serving-high"
    assert pod["spec"]["serviceAccountName"] == "model-reader"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    assert pod["metadata"]["annotations"]["example.com/owner"] == "search"
    # A retained version scaled back up runs its recorded template, with today's pod settings.
    old = build_model_deployment(md, "v1", md.spec.template(), 1, SETTINGS)
    assert old["spec"]["template"]["spec"]["priorityClassName"] == "serving-high"


def test_the_operators_pod_labels_and_annotations_win_and_selectors_stay() -> None:
    md = model(podTemplate=POD_TEMPLATE)
    obj, plain = deployment(md), deployment(model())
    pod = obj["spec"]["template"]["metadata"]
    assert pod["labels"][naming.MANAGED_BY] == naming.COMPONENT
    assert pod["annotations"]["prometheus.io/scrape"] == "true"
    assert obj["spec"]["selector"] == plain["spec"]["selector"]


def test_pod_template_is_not_part_of_the_version() -> None:
    # Not in the recorded template, nor in its hash: changing it starts no rollout.
    with_pod, without = model(podTemplate=POD_TEMPLATE), model()
    assert with_pod.spec.template() == without.spec.template()
    assert template_hash(with_pod.spec.template()) == template_hash(without.spec.template())


def test_without_a_pod_template_the_pod_spec_sets_none_of_its_fields() -> None:
    spec = deployment(model())["spec"]["template"]["spec"]
    assert not {"affinity", "priorityClassName", "serviceAccountName", "imagePullSecrets"} & set(
        spec
    )
