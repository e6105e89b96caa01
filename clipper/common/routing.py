"""The routing table: what the frontend serves and where each model runs.

app -> models -> versions (each with a traffic weight) -> replicas (host:port).

This is the contract between whoever knows the deployment and the frontend that
serves it. ``clipper run`` writes it as a static YAML/JSON file; the frontend's
Kubernetes discovery builds the same objects from ClipperApps, ModelDeployments'
``status.traffic`` and EndpointSlices. The frontend never needs to know which.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PolicyType = Literal["exp3", "exp4", "epsilon_greedy", "thompson", "fixed"]


def host_port(host: str, port: int) -> str:
    """``host:port`` as a replica is addressed here (``[host]:port`` for IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchingConfig(_Model):
    """How the frontend batches queries for one model."""

    adaptive: bool = True
    """Size batches by AIMD against the app's latency objective."""
    max_batch_size: int = Field(default=256, ge=1)
    """Upper bound on a batch (and the fixed size when ``adaptive`` is off)."""
    batch_wait_ms: float = Field(default=0.0, ge=0)
    """Clipper's delayed batching: wait this long for a batch to fill at low load."""


class VersionRoute(_Model):
    """One version of a model: its share of traffic and its replicas."""

    version: str
    weight: float = Field(default=100.0, ge=0)
    """Relative traffic weight among the model's versions (they need not sum to 100)."""
    replicas: tuple[str, ...] = ()
    """``host:port`` of each ready replica's Open Inference Protocol gRPC endpoint."""
    shadow: bool = False
    """A Shadow rollout's candidate: it gets a mirrored copy of the queries answered by
    the model's (one) weighted version, never a caller's query; its weight is 0."""


class ModelRoute(_Model):
    """One model (a ModelDeployment) of an app."""

    name: str
    versions: tuple[VersionRoute, ...] = ()
    batching: BatchingConfig = BatchingConfig()


class SelectionConfig(_Model):
    """Which bandit policy picks or combines the app's models."""

    type: PolicyType = "exp3"
    params: dict[str, Any] = Field(default_factory=dict)
    """Policy parameters, e.g. ``eta`` for exp3/exp4, ``epsilon``, ``model`` for fixed."""


class NewVersionConfig(_Model):
    """How a model's new version starts learning when it becomes the model's arm."""

    start: Literal["fresh", "predecessor"] = "fresh"
    """fresh: as a model nobody has seen; predecessor: from the version it replaces,
    shrunk to at most ``prior_observations`` pseudo-observations."""
    prior_observations: int = Field(default=10, ge=1)


class CacheConfig(_Model):
    enabled: bool = True
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)


class TensorSpec(_Model):
    """An input signature: what one row of a query looks like."""

    name: str = "input"
    datatype: str = "FP64"
    shape: tuple[int, ...] = ()
    """The shape of one row, without the batch dimension; -1 for a variable size."""


class AppConfig(_Model):
    """One ClipperApp as the frontend serves it."""

    name: str
    models: tuple[ModelRoute, ...] = ()
    latency_slo_ms: float = Field(default=100.0, gt=0)
    default_output: Any = None
    """Answered, with ``default: true`` and a reason, when no prediction is in time."""
    selection: SelectionConfig = SelectionConfig()
    new_version: NewVersionConfig = NewVersionConfig()
    """Kept apart from ``selection``: changing it must not restart the policy."""
    cache: CacheConfig = CacheConfig()
    input: TensorSpec | None = None
    confidence_threshold: float | None = Field(default=None, ge=0, le=1)
    """Ensembles only: below this share of agreeing models, answer the default."""

    @model_validator(mode="after")
    def _unique_models(self) -> AppConfig:
        names = [m.name for m in self.models]
        if len(names) != len(set(names)):
            raise ValueError(f"app '{self.name}' lists a model twice: {names}")
        return self


class RoutingTable(_Model):
    apps: dict[str, AppConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_match(self) -> RoutingTable:
        for key, app in self.apps.items():
            if key != app.name:
                raise ValueError(f"app key '{key}' differs from its name '{app.name}'")
        return self
