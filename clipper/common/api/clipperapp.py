"""ClipperApp: one prediction endpoint over a set of ModelDeployments.

The models are named (``spec.models``) or selected by label (``spec.modelSelector``);
``select_models`` resolves either against the ModelDeployments at hand, the same way
for local mode and the operator.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field

from clipper.common.api.base import (
    ApiModel,
    Condition,
    LabelSelector,
    ObjectMeta,
    ResourceRequirements,
    TensorSignature,
)
from clipper.common.api.modeldeployment import ModelDeployment, PodMetadata, PodSettings
from clipper.common.errors import ConfigError


class NewVersionSpec(ApiModel):
    """How a model's new version starts learning (arms are per model version)."""

    start: Literal["fresh", "predecessor"] = "fresh"
    prior_observations: int = Field(default=10, ge=1, le=1_000_000)


class SelectionPolicySpec(ApiModel):
    """How the frontend picks a model per query, or combines several."""

    type: Literal["exp3", "exp4", "epsilon_greedy", "thompson", "fixed"] = "exp3"
    parameters: dict[str, Any] | None = None
    confidence_threshold: float | None = None
    new_version: NewVersionSpec = Field(default_factory=NewVersionSpec)


class CacheSpec(ApiModel):
    """The frontend's prediction cache."""

    enabled: bool = True
    max_bytes: int = 64 * 1024 * 1024


class ServiceSpec(ApiModel):
    """The Service in front of the frontend; the local ports in local mode."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    http_port: int = 8080
    grpc_port: int = 8081


class FrontendPodTemplate(ApiModel):
    """Kubernetes-only settings of the frontend's pods (local mode ignores them)."""

    metadata: PodMetadata | None = None
    spec: PodSettings | None = None


class FrontendSpec(ApiModel):
    """The app's frontend processes."""

    replicas: int = 1
    workers: int = 1
    grpc_server: Literal["auto", "native", "python"] = "auto"
    image: str | None = None
    resources: ResourceRequirements | None = None
    queue_capacity: int = 1024
    aimd_budget_fraction: float = 0.5
    feedback_max_bytes: int = 64 * 1024 * 1024
    drain_delay_seconds: int = 5
    pod_template: FrontendPodTemplate | None = None
    service: ServiceSpec = Field(default_factory=ServiceSpec)


class SecretKeyRef(ApiModel):
    """A key of a Secret in the app's namespace."""

    name: str
    key: str = "url"


class StateSpec(ApiModel):
    """Where the frontends keep learned selection state and the query log.

    ``memory``: each frontend process alone (lost on restart). ``redis``: one Redis
    that every frontend replica (and every worker process of one) shares.
    """

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = None
    secret_ref: SecretKeyRef | None = None
    key_prefix: str | None = None
    query_log_ttl_seconds: int = Field(default=3600, alias="queryLogTTLSeconds")
    query_log_max_bytes: int = 64 * 1024 * 1024

    @property
    def shared(self) -> bool:
        """Whether several frontend processes can share this backend (learn as one)."""
        return self.backend == "redis"

    def require_shared(self, processes: int, what: str = "frontend.workers") -> None:
        """``ConfigError`` unless ``processes`` frontend processes can share this state."""
        if processes > 1 and not self.shared:
            raise ConfigError(
                f"{what} is {processes} but spec.state.backend is {self.backend}: worker "
                "processes would each learn alone and feedback would reach only one of them; "
                "set spec.state.backend: redis (with spec.state.url or spec.state.secretRef)",
                location="spec.state.backend",
            )


class ClipperAppSpec(ApiModel):
    """The models the app serves, and how the frontend answers queries."""

    models: list[str] | None = None
    model_selector: LabelSelector | None = None
    selection_policy: SelectionPolicySpec = Field(default_factory=SelectionPolicySpec)
    latency_slo_millis: int = Field(default=100, alias="latencySLOMillis")
    default_output: Any = None
    cache: CacheSpec = Field(default_factory=CacheSpec)
    input: TensorSignature | None = None
    frontend: FrontendSpec = Field(default_factory=FrontendSpec)
    state: StateSpec = Field(default_factory=StateSpec)


class Endpoint(ApiModel):
    """Where clients reach the app."""

    http: str | None = None
    grpc: str | None = None


class ModelSummary(ApiModel):
    """One model of the app, as its status summarises it."""

    name: str
    model_name: str | None = None
    ready: bool = False
    traffic: str | None = None
    ready_replicas: int = 0
    message: str | None = None


class ClipperAppStatus(ApiModel):
    """What the controller observed about the app."""

    observed_generation: int | None = None
    endpoint: Endpoint | None = None
    ready_models: str | None = None
    models: list[ModelSummary] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)


class ClipperApp(ApiModel):
    """A ClipperApp object."""

    api_version: Literal["clipper.dev/v1alpha1"] = "clipper.dev/v1alpha1"
    kind: Literal["ClipperApp"] = "ClipperApp"
    metadata: ObjectMeta
    spec: ClipperAppSpec
    status: ClipperAppStatus = Field(default_factory=ClipperAppStatus)

    def select_models(self, deployments: Iterable[ModelDeployment]) -> list[ModelDeployment]:
        """The app's ModelDeployments among ``deployments`` (same namespace), in a stable order.

        Named models keep the order of ``spec.models``; selected ones are sorted by name.
        A named model that is missing is simply absent: callers report it.
        """
        mine = [d for d in deployments if d.metadata.namespace == self.metadata.namespace]
        if self.spec.models is not None:
            by_name = {d.metadata.name: d for d in mine}
            return [by_name[name] for name in self.spec.models if name in by_name]
        selector = self.spec.model_selector or LabelSelector()
        chosen = [d for d in mine if selector.matches(d.metadata.labels)]
        return sorted(chosen, key=lambda d: d.metadata.name)
