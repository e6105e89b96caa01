"""Manifest validation: a table of valid and invalid manifests, and the errors' words.

Every invalid manifest must fail before anything starts, with an error that names
the file, the object and the field -- asserted exactly here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from clipper.common import api, manifests
from clipper.common.errors import ConfigError, InvalidManifests

HERE = Path(__file__).parent / "manifests"

MD = """\
apiVersion: clipper.dev/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}}}
spec:
  version: v1
  framework: sklearn
  modelUri: model.joblib
{extra}"""

APP = """\
apiVersion: clipper.dev/v1alpha1
kind: ClipperApp
metadata: {{name: digits}}
spec:
  models: [m]
{extra}"""


def md(extra: str = "", name: str = "m", **replace: str) -> str:
    text = MD.format(name=name, extra=_block(extra))
    for old, new in replace.items():
        text = text.replace(old.replace("_", " "), new)
    return text


def app(extra: str = "") -> str:
    return APP.format(extra=_block(extra)) + "---\n" + md()


def _block(extra: str) -> str:
    """``extra`` as lines of ``spec``."""
    return textwrap.indent(textwrap.dedent(extra).strip() + "\n", "  ") if extra else ""


def errors_of(tmp_path: Path, text: str) -> list[ConfigError]:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(InvalidManifests) as caught:
        manifests.load(tmp_path / "bad.yaml")
    return caught.value.errors


# (id, manifest text, where the error is: "Kind/name: field", words in the message)
INVALID = [
    ("slo-minimum", app("latencySLOMillis: -5"), "ClipperApp/digits: spec.latencySLOMillis",
     "-5 is less than the minimum of 1"),
    ("wrong-type", md("replicas: two"), "ModelDeployment/m: spec.replicas",
     "'two' is not of type 'integer'"),
    ("unknown-field", md("replica: 3"), "ModelDeployment/m: spec.replica",
     "unknown field; did you mean 'replicas'?"),
    ("unknown-nested-field", md("rollout: {stratgy: Canary}"),
     "ModelDeployment/m: spec.rollout.stratgy", "did you mean 'strategy'?"),
    ("missing-version", md(**{"version:_v1": ""}), "ModelDeployment/m: spec.version",
     "required field is missing"),
    ("unknown-framework", md(**{"sklearn": "tensorflow"}), "ModelDeployment/m: spec.framework",
     "'tensorflow' is not one of ['python', 'sklearn', 'pytorch', 'onnx', 'noop']"),
    ("unknown-kind", md(**{"kind:_ModelDeployment": "kind: Deployment"}),
     "Deployment/m: kind", "unknown kind 'Deployment'"),
    ("wrong-api-version", md(**{"v1alpha1": "v1"}), "ModelDeployment/m: apiVersion",
     "'clipper.dev/v1' is not served: use 'clipper.dev/v1alpha1'"),
    ("canary-needs-steps", md("rollout: {strategy: Canary}"),
     "ModelDeployment/m: spec.rollout.steps", "the Canary strategy needs at least one step"),
    ("steps-only-for-canary", md("rollout: {steps: [{weight: 10}]}"),
     "ModelDeployment/m: spec.rollout.steps", "steps apply only to the Canary strategy"),
    ("canary-weights-decrease",
     md("rollout: {strategy: Canary, steps: [{weight: 50}, {weight: 10}]}"),
     "ModelDeployment/m: spec.rollout.steps", "canary step weights must never decrease"),
    ("canary-weight-over-100", md("rollout: {strategy: Canary, steps: [{weight: 150}]}"),
     "ModelDeployment/m: spec.rollout.steps[0].weight", "150 is greater than the maximum of 100"),
    ("analysis-rate-over-1", md("rollout: {analysis: {maxErrorRateIncrease: 1.5}}"),
     "ModelDeployment/m: spec.rollout.analysis.maxErrorRateIncrease",
     "1.5 is greater than the maximum of 1"),
    ("analysis-no-samples", md("rollout: {analysis: {minSamples: 0}}"),
     "ModelDeployment/m: spec.rollout.analysis.minSamples", "0 is less than the minimum of 1"),
    ("gpu-on-sklearn", md("resources: {limits: {nvidia.com/gpu: 1}}"),
     "ModelDeployment/m: spec.resources", "nvidia.com/gpu needs a framework that can use a GPU"),
    ("cuda-on-sklearn", md("device: cuda"), "ModelDeployment/m: spec.device",
     "device cuda needs a framework that can use a GPU"),
    ("cpu-fallback-not-a-boolean", md("cpuFallback: sometimes"),
     "ModelDeployment/m: spec.cpuFallback", "'sometimes' is not of type 'boolean'"),
    ("method-on-onnx", md("method: predict", **{"sklearn": "onnx"}),
     "ModelDeployment/m: spec.method", "method applies only to the sklearn framework"),
    ("factory-on-sklearn", md("factory: nets:make"), "ModelDeployment/m: spec.factory",
     "factory applies only to the pytorch framework"),
    ("model-uri-required", md(**{"modelUri:_model.joblib": ""}),
     "ModelDeployment/m: spec.modelUri", "modelUri is required unless the framework is noop"),
    ("bad-quantity", md("resources: {limits: {cpu: lots}}"),
     "ModelDeployment/m: spec.resources.limits.cpu", "'lots' is not a resource quantity"),
    ("version-with-dots", md(**{"version:_v1": "version: '1.2'"}),
     "ModelDeployment/m: spec.version", "'1.2' is not a DNS label"),
    ("name-not-dns-1035", md(name="Digits"), "ModelDeployment/Digits: metadata.name",
     "'Digits' is not a DNS-1035 label"),
    ("name-plus-version-too-long", md(name="m" * 30, **{"version:_v1": "version: " + "v" * 35}),
     f"ModelDeployment/{'m' * 30}: spec.version", "together must be at most 62 characters"),
    ("models-and-selector", app("modelSelector: {matchLabels: {a: b}}"),
     "ClipperApp/digits: spec", "set exactly one of models and modelSelector"),
    ("same-ports", app("frontend: {service: {httpPort: 9000, grpcPort: 9000}}"),
     "ClipperApp/digits: spec.frontend.service", "httpPort and grpcPort must differ"),
    ("policy-enum", app("selectionPolicy: {type: ucb}"),
     "ClipperApp/digits: spec.selectionPolicy.type", "'ucb' is not one of"),
    ("policy-parameter-typo", app("selectionPolicy: {parameters: {gama: 0.2}}"),
     "ClipperApp/digits: spec.selectionPolicy.parameters.gama", "did you mean 'gamma'?"),
    ("policy-parameter-of-another-policy",
     app("selectionPolicy: {type: exp3, parameters: {epsilon: 0.2}}"),
     "ClipperApp/digits: spec.selectionPolicy.parameters.epsilon",
     "epsilon is a parameter of the epsilon_greedy policy only"),
    ("policy-parameter-of-the-default-policy", app("selectionPolicy: {parameters: {model: m}}"),
     "ClipperApp/digits: spec.selectionPolicy.parameters.model",
     "model is a parameter of the fixed policy only"),
    ("policy-parameter-out-of-range",
     app("selectionPolicy: {type: exp3, parameters: {gamma: 1.5}}"),
     "ClipperApp/digits: spec.selectionPolicy.parameters.gamma",
     "1.5 is greater than the maximum of 1"),
    ("policy-parameter-exclusive-minimum",
     app("selectionPolicy: {type: thompson, parameters: {prior_alpha: 0}}"),
     "ClipperApp/digits: spec.selectionPolicy.parameters.prior_alpha",
     "0 is less than or equal to the minimum of 0"),
    ("policy-parameter-enum", app("selectionPolicy: {parameters: {loss: hinge}}"),
     "ClipperApp/digits: spec.selectionPolicy.parameters.loss", "'hinge' is not one of"),
    ("frontend-knob-range", app("frontend: {aimdBudgetFraction: 0}"),
     "ClipperApp/digits: spec.frontend.aimdBudgetFraction", "0 is less than the minimum of 0.01"),
    ("unknown-metadata-field", md(**{"{name: m}": "{name: m, lables: {a: b}}"}),
     "ModelDeployment/m: metadata.lables", "did you mean 'labels'?"),
    ("missing-model", app().replace("models: [m]", "models: [m, gone]"),
     "ClipperApp/digits: spec.models[1]", "ModelDeployment 'gone' is not defined"),
    ("selector-selects-nothing",
     app().replace("models: [m]", "modelSelector: {matchLabels: {a: b}}"),
     "ClipperApp/digits: spec.modelSelector", "selects no ModelDeployment"),
    ("model-name-clash",
     app().replace("models: [m]", "models: [m, n]") + "---\n" + md("modelName: m", name="n"),
     "ClipperApp/digits: spec.models", "ModelDeployments m and n both serve the model name 'm'"),
    ("defined-twice", md() + "---\n" + md(), "ModelDeployment/m: metadata.name",
     "defined twice: also in"),
    ("pod-label-reserved", md("podTemplate: {metadata: {labels: {clipper.dev/model: x}}}"),
     "ModelDeployment/m: spec.podTemplate.metadata.labels",
     "label keys under clipper.dev/ are reserved for the operator"),
    ("pod-annotation-reserved",
     md("podTemplate: {metadata: {annotations: {clipper.dev/note: x}}}"),
     "ModelDeployment/m: spec.podTemplate.metadata.annotations",
     "annotation keys under clipper.dev/ are reserved for the operator"),
    ("pod-label-value", md("podTemplate: {metadata: {labels: {team: 'a b'}}}"),
     "ModelDeployment/m: spec.podTemplate.metadata.labels.team", "'a b'"),
    ("pod-affinity-typo", md("podTemplate: {spec: {affinity: {nodeAfinity: {}}}}"),
     "ModelDeployment/m: spec.podTemplate.spec.affinity.nodeAfinity",
     "did you mean 'nodeAffinity'?"),
    ("pod-priority-class-name", md("podTemplate: {spec: {priorityClassName: High_Prio}}"),
     "ModelDeployment/m: spec.podTemplate.spec.priorityClassName", "'High_Prio'"),
    ("pod-service-account-name", md("podTemplate: {spec: {serviceAccountName: Reader}}"),
     "ModelDeployment/m: spec.podTemplate.spec.serviceAccountName", "'Reader'"),
    ("frontend-pod-label-reserved",
     app("frontend: {podTemplate: {metadata: {labels: {clipper.dev/app: x}}}}"),
     "ClipperApp/digits: spec.frontend.podTemplate.metadata.labels",
     "label keys under clipper.dev/ are reserved for the operator"),
    ("frontend-pod-service-account",
     app("frontend: {podTemplate: {spec: {serviceAccountName: a}}}"),
     "ClipperApp/digits: spec.frontend.podTemplate.spec.serviceAccountName", "unknown field"),
    ("pod-pull-secret-shape", md("podTemplate: {spec: {imagePullSecrets: [registry]}}"),
     "ModelDeployment/m: spec.podTemplate.spec.imagePullSecrets[0]",
     "'registry' is not of type 'object'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "where", "words"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_manifest_names_file_object_and_field(
    tmp_path: Path, text: str, where: str, words: str
) -> None:
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1, [e.message for e in errors]
    assert errors[0].location == f"{tmp_path / 'bad.yaml'}: {where}"
    assert words in errors[0].message


def test_the_briefs_example_reads_exactly(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path, app("latencySLOMillis: -5"))
    assert error.message == (
        f"{tmp_path / 'bad.yaml'}: ClipperApp/digits: spec.latencySLOMillis:"
        " -5 is less than the minimum of 1"
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(md("replicas: -1\nbatching: {maxBatchSize: 0}"))
    (tmp_path / "b.yaml").write_text(app("cache: {maxBytes: -1}").replace("name: m", "name: q"))
    with pytest.raises(InvalidManifests) as caught:
        manifests.load(tmp_path)
    where = sorted(e.location.rsplit(": ", 1)[-1] for e in caught.value.errors)
    assert where == ["spec.batching.maxBatchSize", "spec.cache.maxBytes", "spec.replicas"]
    assert str(caught.value).startswith("3 problems in the manifests:\n  ")


def test_an_invalid_model_is_not_also_reported_missing_from_its_app(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path, app().replace("framework: sklearn", "framework: tensorflow"))
    assert error.location.endswith("ModelDeployment/m: spec.framework")


@pytest.mark.parametrize(
    ("text", "words"),
    [("kind: [unclosed", "cannot read it"), ("- just\n- a list\n", "expected a mapping")],
)
def test_unreadable_documents(tmp_path: Path, text: str, words: str) -> None:
    (error,) = errors_of(tmp_path, text)
    assert error.location.startswith(str(tmp_path / "bad.yaml"))
    assert words in error.message


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidManifests, match="no such file or directory"):
        manifests.load(tmp_path / "nope.yaml")
    with pytest.raises(InvalidManifests, match=r"no \.yaml, \.yml, \.json files in it"):
        manifests.load(tmp_path)


def test_valid_manifests_load_typed_with_defaults() -> None:
    found = manifests.load(HERE)
    assert [a.metadata.name for a in found.apps] == ["vision", "digits"]  # canary.yaml first
    digits = next(a for a in found.apps if a.metadata.name == "digits")
    assert digits.spec.latency_slo_millis == 50
    assert digits.spec.default_output == {"label": -1, "scores": [0.1, 0.9]}
    assert digits.metadata.namespace == "default"
    models = found.models_of(digits)
    assert [m.model_name for m in models] == ["echo", "digits-noop"]
    noop = models[1]
    assert noop.spec.rollout.strategy == "Rolling"
    assert noop.spec.rollout.retain_versions == 2
    assert noop.spec.batching.max_batch_size == 256
    assert noop.spec.replicas == 1
    assert found.source(noop).path == HERE / "digits.yaml"
    assert found.source(noop).document == 3
    vision = next(a for a in found.apps if a.metadata.name == "vision")
    (resnet,) = found.models_of(vision)
    assert resnet.spec.rollout.steps is not None
    assert [s.pause_seconds for s in resnet.spec.rollout.steps] == [300, 60]
    assert resnet.spec.template().gpus()


def test_python_models_may_ask_for_a_gpu_with_a_cpu_fallback(tmp_path: Path) -> None:
    gpu = """
        device: cuda
        cpuFallback: true
        resources: {limits: {nvidia.com/gpu: 1}}
    """
    text = md(gpu, **{"sklearn": "python", "model.joblib": "clipper.testing.functions:identity"})
    (tmp_path / "gpu.yaml").write_text(text)
    (model,) = manifests.load(tmp_path / "gpu.yaml").deployments
    template = model.spec.template()
    assert (template.framework, template.device, template.cpu_fallback) == ("python", "cuda", True)
    assert template.gpus()


def test_cpu_fallback_is_off_unless_asked_for(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(md())
    (model,) = manifests.load(tmp_path / "m.yaml").deployments
    assert model.spec.template().cpu_fallback is False


def test_label_selector_operators() -> None:
    found = manifests.load(HERE / "canary.yaml")
    (vision,) = found.apps
    selector = vision.spec.model_selector
    assert selector is not None
    assert selector.matches({"team": "vision", "tier": "prod"})
    assert selector.matches({"team": "vision"})
    assert not selector.matches({"team": "vision", "tier": "experimental"})
    assert not selector.matches({"team": "nlp"})


def test_same_name_in_other_namespace_or_kind_is_fine(tmp_path: Path) -> None:
    other = md().replace("{name: m}", "{name: m, namespace: staging}")
    (tmp_path / "ok.yaml").write_text(app() + "---\n" + other)
    found = manifests.load(tmp_path)
    assert len(found.deployments) == 2


# --- model URIs (local mode) ---------------------------------------------------------


def test_model_uris_of_the_valid_manifests_exist() -> None:
    found = manifests.load(HERE, check_models=True)
    assert len(found.deployments) == 3


def test_remote_model_uris_are_left_to_the_model_server_to_fetch(tmp_path: Path) -> None:
    for uri in ("s3://bucket/m.joblib", "https://models.example/m.joblib"):
        (tmp_path / "m.yaml").write_text(md().replace("model.joblib", uri))
        (found,) = manifests.load(tmp_path, check_models=True).deployments
        assert found.spec.model_uri == uri


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ("modelUri: missing.joblib", "spec.modelUri", "missing.joblib does not exist"),
        ("modelUri: pvc://claim/m.joblib", "spec.modelUri", "names a place in a cluster"),
        ("modelUri: image:///m.joblib", "spec.modelUri", "names a place in a cluster"),
        ("modelUri: file:///no/such/m.joblib", "spec.modelUri", "/no/such/m.joblib does not exist"),
    ],
)
def test_missing_model_files(tmp_path: Path, spec: str, field: str, words: str) -> None:
    (tmp_path / "m.yaml").write_text(md().replace("modelUri: model.joblib", spec))
    with pytest.raises(InvalidManifests) as caught:
        manifests.load(tmp_path, check_models=True)
    (error,) = caught.value.errors
    assert error.location == f"{tmp_path / 'm.yaml'}: ModelDeployment/m: {field}"
    assert words in error.message


def test_relative_and_file_uris_resolve_against_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.joblib").write_bytes(b"x")
    target = str(tmp_path / "models" / "m.joblib")
    assert manifests.resolve_model_uri("models/m.joblib", "sklearn", tmp_path) == target
    assert manifests.resolve_model_uri(f"file://{target}", "sklearn", tmp_path) == target
    assert manifests.resolve_model_uri("tiny:predict", "python", tmp_path) == "tiny:predict"
    (tmp_path / "m.yaml").write_text(md().replace("model.joblib", "models/m.joblib"))
    manifests.load(tmp_path / "m.yaml", check_models=True)


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("no_such_module_here:predict", "cannot import 'no_such_module_here:predict'"),
        ("tiny_model:missing", "'tiny_model' has no callable 'missing'"),
        ("tiny_model:NOT_CALLABLE", "'tiny_model' has no callable 'NOT_CALLABLE'"),
    ],
)
def test_python_functions_must_import(tmp_path: Path, uri: str, words: str) -> None:
    (tmp_path / "tiny_model.py").write_text((HERE / "tiny_model.py").read_text())
    text = md(**{"sklearn": "python"}).replace("model.joblib", uri)
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(InvalidManifests) as caught:
        manifests.load(tmp_path / "m.yaml", check_models=True)
    (error,) = caught.value.errors
    assert error.location.endswith("ModelDeployment/m: spec.modelUri")
    assert words in error.message


def test_pytorch_factory_must_import(tmp_path: Path) -> None:
    (tmp_path / "w.pt").write_bytes(b"x")
    text = md("factory: nets_nowhere:make", **{"sklearn": "pytorch"}).replace(
        "model.joblib", "w.pt"
    )
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(InvalidManifests) as caught:
        manifests.load(tmp_path / "m.yaml", check_models=True)
    (error,) = caught.value.errors
    assert error.location.endswith("ModelDeployment/m: spec.factory")
    assert "cannot import 'nets_nowhere:make'" in error.message


def test_a_pod_template_loads_typed_and_is_no_part_of_the_version(tmp_path: Path) -> None:
    pod = """\
        podTemplate:
          metadata: {labels: {team: search}, annotations: {example.com/owner: search}}
          spec:
            affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: []}}
            priorityClassName: serving-high
            serviceAccountName: model-reader
            imagePullSecrets: [{name: registry}]
        """
    (tmp_path / "m.yaml").write_text(md(pod))
    (tmp_path / "model.joblib").write_bytes(b"")
    (loaded,) = manifests.load(tmp_path / "m.yaml").deployments
    settings = loaded.spec.pod_template
    assert settings is not None
    assert settings.spec is not None
    assert settings.spec.priority_class_name == "serving-high"
    assert settings.spec.image_pull_secrets == [api.LocalObjectReference(name="registry")]
    assert "podTemplate" not in loaded.spec.template().to_dict()
