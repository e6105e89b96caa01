"""ModelDeployment: one model served in one or more versions, and its rollout state.

The spec is split the way a rollout needs it. ``VersionTemplate`` is everything a
version runs with (framework, model URI, image, resources...): the status records
it per version, so a retained version can be scaled back up, and an old one
drained, after the spec has moved on to another version. It is also what makes a
version immutable: a spec that gives an existing version another template is
refused. The rest of the spec
(version, replicas, batching, rollout) steers the rollout and the frontend.

The status holds the whole rollout state (see ``clipper.common.rollout``), so a
restarted operator, or a restarted ``clipper run``, resumes where it stopped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from clipper.common.api.base import (
    ApiModel,
    Condition,
    ObjectMeta,
    ResourceRequirements,
    TensorSignature,
)

Framework = Literal["python", "sklearn", "pytorch", "onnx", "noop"]
GPU_FRAMEWORKS: frozenset[str] = frozenset({"pytorch", "onnx", "python"})
"""Frameworks whose model server can use a GPU; the others run on CPU only (a python
function learns its device from ``CLIPPER_DEVICE``, which the python adapter sets)."""
GPU_RESOURCE = "nvidia.com/gpu"

Phase = Literal["Pending", "Progressing", "Shadowing", "Serving", "Draining", "Retained", "Failed"]


class EnvVar(ApiModel):
    """One environment variable of the model server."""

    name: str
    value: str = ""


class Toleration(ApiModel):
    """A Pod toleration."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class S3Storage(ApiModel):
    """Where an ``s3://`` modelUri's store is and how to sign in (cluster only)."""

    endpoint: str | None = None
    """The S3-compatible endpoint URL; AWS S3 when unset."""
    region: str | None = None
    secret_name: str | None = None
    """A Secret in the namespace whose keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    optionally AWS_SESSION_TOKEN) become the fetching init container's environment."""


class ModelStorage(ApiModel):
    """How the model at a remote modelUri is fetched (cluster only)."""

    s3: S3Storage | None = None


class VersionTemplate(ApiModel):
    """What one version runs: everything that goes into its model-server processes."""

    framework: Framework
    model_uri: str | None = None
    storage: ModelStorage | None = None
    image: str | None = None
    method: Literal["predict", "predict_proba"] | None = None
    factory: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cpu_fallback: bool = False
    """With ``device: cuda``, serve on CPU when no GPU is usable instead of failing."""
    threads: int | None = None
    max_concurrency: int | None = None
    input: TensorSignature | None = None
    env: list[EnvVar] | None = None
    args: list[str] | None = None
    resources: ResourceRequirements | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None

    def gpus(self) -> bool:
        """Whether the template asks for a GPU (``nvidia.com/gpu`` in limits or requests)."""
        res = self.resources or ResourceRequirements()
        return any(GPU_RESOURCE in (group or {}) for group in (res.limits, res.requests))


class PodMetadata(ApiModel):
    """Labels and annotations added to every replica's pod."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Affinity(ApiModel):
    """A Pod's affinity; its parts go to the pods as they are."""

    node_affinity: dict[str, Any] | None = None
    pod_affinity: dict[str, Any] | None = None
    pod_anti_affinity: dict[str, Any] | None = None


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace, by name."""

    name: str


class PodSettings(ApiModel):
    """Fields of a pod spec that a user may set on the pods the operator makes."""

    affinity: Affinity | None = None
    priority_class_name: str | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None


class ModelPodSettings(PodSettings):
    """Fields of every replica's pod spec that are not part of a version."""

    service_account_name: str | None = None


class PodTemplate(ApiModel):
    """Kubernetes-only settings of every version's pods (local mode ignores them).

    Not part of ``VersionTemplate``: they apply to every version at once, and a change
    updates the running pods through each Deployment's rolling update, not a rollout.
    """

    metadata: PodMetadata | None = None
    spec: ModelPodSettings | None = None


class BatchingSpec(ApiModel):
    """How the frontend batches queries to the model."""

    max_batch_size: int = 256
    batch_wait_millis: float = 0
    adaptive: bool = True


class CanaryStep(ApiModel):
    """One canary step: the new version's share of traffic, held for a pause."""

    weight: int
    pause_seconds: int = 60


class ShadowSpec(ApiModel):
    """The Shadow strategy's sequential test (``clipper.common.rollout.sequential``)."""

    alpha: float = 0.05
    beta: float = 0.05
    delta: float = 0.1
    min_samples: int = 30
    max_samples: int = 2000
    max_duration_seconds: int = 3600
    """How long the comparison may run (from its start) before a test still
    undecided rejects the candidate as inconclusive: a shadow that gets no labels
    must not hold its replicas forever, and is never promoted without evidence."""


class AnalysisSpec(ApiModel):
    """The gates a canary step passes before it advances (``clipper.common.rollout.analysis``).

    Each compares the candidate with the stable version on the traffic both served
    during the step, as the app's frontends counted it.
    """

    enabled: bool = True
    min_samples: int = 100
    """Queries the candidate must have answered in the step before it is judged;
    with fewer at the end of the pause the step advances unjudged (the event says so)."""
    max_error_rate_increase: float = 0.01
    """How much higher the candidate's error rate may be than the stable's (0.01: one point)."""
    max_default_rate_increase: float = 0.02
    """How much higher the candidate's rate of default answers, per reason, may be."""
    max_latency_slo_ratio: float = 1.0
    """The candidate's p99 latency may be at most this times the app's latency SLO, or
    at most the stable version's p99 over the step when that is higher."""
    min_labels: int = 30
    """Labels (feedback) each version needs before the loss gate judges."""
    max_loss_increase: float = 0.05
    """How much higher the candidate's mean loss may be than the stable's."""
    interval_seconds: int = 5
    """How often the stats are read and judged during a step."""
    warmup_seconds: int = 5
    """The start of each step that is not judged: when it ends the counters are read
    again and the step is judged on what follows. Capped at half the step's pause."""
    failure_seconds: int = 10
    """How long the gates must keep failing, judged every ``interval_seconds``, before
    the step rolls back; a step whose pause ends while they fail waits for the verdict.
    0: at the first failed judgement."""


class RolloutSpec(ApiModel):
    """How a change of ``spec.version`` reaches traffic, and how failures roll back."""

    strategy: Literal["Rolling", "Canary", "Shadow"] = "Rolling"
    steps: list[CanaryStep] | None = None
    shadow: ShadowSpec = Field(default_factory=ShadowSpec)
    progress_deadline_seconds: int = 600
    auto_rollback: bool = True
    drain_seconds: int = 10
    retain_versions: int = 2
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    keep_best: int = 0
    """Shadow only: keep up to this many versions running (0: off) and serve whichever
    is best on feedback -- a promoted version's predecessor stays up as a challenger,
    compared in the shadow, and comes back if it proves better; a challenger that
    proves worse scales to zero (``retainVersions`` bounds those kept)."""


class ModelDeploymentSpec(VersionTemplate):
    """The model, how it is served, and how a new version rolls out."""

    version: str
    """The version to serve. Versions are immutable: naming an existing one (serving,
    draining, retained, the candidate) with a different template is refused
    (``Degraded=True VersionImmutable``); naming a retained one with its own template
    rolls back at once. See ``clipper.common.rollout.immutable``."""
    model_name: str | None = None
    replicas: int = 1
    """Replicas of ``spec.version``: not part of the template, so it scales in place."""
    pod_template: PodTemplate | None = None
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)

    def template(self) -> VersionTemplate:
        """The template of ``spec.version``, as the status records it."""
        return VersionTemplate.model_validate(
            self.model_dump(include=set(VersionTemplate.model_fields), by_alias=False)
        )


class TrafficWeight(ApiModel):
    """One version's share of traffic, in percent."""

    version: str
    weight: int


class PairedCounts(ApiModel):
    """Labelled queries answered by both versions (``sequential.Paired``)."""

    wins: int = 0
    losses: int = 0
    ties: int = 0
    stable_loss: float = 0.0
    candidate_loss: float = 0.0


class FrontendPaired(PairedCounts):
    """One frontend's cumulative paired counts, as the controller last read them."""

    instance: str
    """The frontend process's id: a restarted frontend has a new one, counting from zero."""
    seen_at: datetime | None = None
    """When the controller last read them."""


class ShadowStatus(ApiModel):
    """Where a Shadow rollout's comparison stands; all of it, so a restarted
    controller resumes the test where it was."""

    started_at: datetime | None = None
    stable: str | None = None
    """The stable version the comparison is with (a new stable starts it over)."""
    evidence: PairedCounts = Field(default_factory=PairedCounts)
    """The comparison since the shadow started (frontend restarts included)."""
    last_seen: PairedCounts = Field(default_factory=PairedCounts)
    """The sum of the frontends' cumulative counts at the last read."""
    frontends: list[FrontendPaired] = Field(default_factory=list)
    """Each frontend's cumulative counts at the last read that reached it: the next
    read adds what each grew since; a new instance (a restarted frontend) counts
    whole, one missing from a read keeps its entry (the newest few are kept)."""
    samples: int = 0
    stable_loss: float | None = None
    candidate_loss: float | None = None
    log_ratio: float = 0.0
    verdict: Literal["continue", "promote", "reject"] = "continue"


class VersionCounters(ApiModel):
    """One version's cumulative counters on one frontend (every app of the model together)."""

    version: str
    requests: int = 0
    errors: int = 0
    defaults: dict[str, int] | None = None
    latency_buckets: list[int] | None = None
    """Queries per latency bucket (``analysis.LATENCY_BUCKETS_MS``, then one overflow)."""
    labels: int = 0
    loss_sum: float = 0.0
    loss_squares: float = 0.0


class FrontendCounters(ApiModel):
    """One frontend's counters for the model's versions, as a step's baseline."""

    instance: str
    """The frontend process's id: a restarted frontend has a new one (its counters reset)."""
    versions: list[VersionCounters] = Field(default_factory=list)


class Challenger(ApiModel):
    """keepBest: a version that served before, compared in the shadow with the stable one."""

    version: str
    shadow: ShadowStatus = Field(default_factory=ShadowStatus)


class RolloutStatus(ApiModel):
    """Where the rollout of the candidate stands."""

    started_at: datetime | None = None
    step: int | None = None
    step_started_at: datetime | None = None
    waiting_since: datetime | None = None
    shadow: ShadowStatus | None = None
    """Shadow only: the comparison of the candidate with the stable version so far."""
    baseline: list[FrontendCounters] | None = None
    """Every frontend's counters when the step in force began (or, with a warm-up,
    when it ended): the step is judged on what was counted since, and a restarted
    controller judges against the same."""
    baseline_at: datetime | None = None
    """When ``baseline`` was read."""
    failing_since: datetime | None = None
    """Since when the step's gates have failed at every judgement (None: they pass,
    or wait for samples); the step rolls back ``failureSeconds`` after it."""


class VersionAnalysis(ApiModel):
    """One version's numbers in the analysis of the step in force."""

    version: str
    requests: int = 0
    error_rate: float | None = None
    default_rates: dict[str, float] | None = None
    """Default answers / queries, by reason (``slo``, ...): what the default gate compares."""
    p99_millis: float | None = None
    labels: int = 0
    loss: float | None = None


class AnalysisStatus(ApiModel):
    """The latest analysis of a canary step, kept after the rollout ends until the next."""

    version: str
    """The candidate judged."""
    step: int | None = None
    verdict: Literal["Waiting", "Passing", "Failing", "Passed", "Failed", "NotJudged"]
    samples: int = 0
    """Queries the candidate answered in the step."""
    loss_summary: str | None = None
    """Each version's mean loss on the labels received in the step (``v1=0.12 v2=0.31``)."""
    message: str | None = None
    versions: list[VersionAnalysis] = Field(default_factory=list)
    judged_at: datetime | None = None


class VersionStatus(ApiModel):
    """One version that runs or is retained."""

    version: str
    phase: Phase
    template: VersionTemplate
    since: datetime | None = None
    created_at: datetime | None = None
    promoted_at: datetime | None = None
    failed_generation: int | None = None
    replicas: int = 0
    ready_replicas: int = 0
    reason: str | None = None
    message: str | None = None


class ModelDeploymentStatus(ApiModel):
    """The rollout state: every version, the traffic, the conditions."""

    observed_generation: int | None = None
    replicas: int | None = None
    """Replicas of every version together: the scale subresource's status.replicas."""
    selector: str | None = None
    """The label selector of every version's replicas: the scale subresource's selector."""
    stable_version: str | None = None
    candidate_version: str | None = None
    shadow_version: str | None = None
    """The candidate that gets a mirrored copy of the queries (Shadow), if any."""
    challengers: list[Challenger] = Field(default_factory=list)
    """keepBest: earlier versions still running in the shadow, each compared with the
    stable version; the frontend mirrors queries to them as to ``shadowVersion``."""
    traffic: list[TrafficWeight] = Field(default_factory=list)
    traffic_summary: str | None = None
    rollout: RolloutStatus = Field(default_factory=RolloutStatus)
    analysis: AnalysisStatus | None = None
    versions: list[VersionStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    """Ready (the model serves, whatever version), Progressing (a rollout is under
    way), Degraded (a failed rollout or a refused spec), Available (the stable
    version has a ready replica); see ``clipper.common.rollout.conditions``."""

    def version(self, version: str | None) -> VersionStatus | None:
        return next((v for v in self.versions if v.version == version), None)

    def weight(self, version: str) -> int:
        return next((t.weight for t in self.traffic if t.version == version), 0)


class ModelDeployment(ApiModel):
    """A ModelDeployment object."""

    api_version: Literal["clipper.dev/v1alpha1"] = "clipper.dev/v1alpha1"
    kind: Literal["ModelDeployment"] = "ModelDeployment"
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)

    @property
    def model_name(self) -> str:
        """The name apps and clients use: ``spec.modelName``, else ``metadata.name``."""
        return self.spec.model_name or self.metadata.name
