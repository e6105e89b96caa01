"""What the operator is told: where to watch, which images to run, how fast to react.

One flat pydantic-settings model, env prefix ``CLIPPER_OPERATOR_``, so the same
knobs come from the operator's Deployment (environment) or from
``clipper operator --<field>`` flags (which win). The docstring under each field
is its ``--help`` text. What the operator *manages* is not here: it comes from
the ClipperApps and ModelDeployments it watches.

The defaults are for a production cluster; the tests shorten only the timings
(resync, back-off), never the behaviour.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from clipper import __version__
from clipper.common.logs import LogFormat


class OperatorSettings(BaseSettings):
    """The operator's process settings."""

    model_config = SettingsConfigDict(
        env_prefix="CLIPPER_OPERATOR_",
        use_attribute_docstrings=True,
        extra="forbid",
        frozen=True,
    )

    namespaces: Annotated[tuple[str, ...], NoDecode] = ()
    """Namespaces to watch, comma-separated (globs such as team-* work). Empty: every
    namespace (the operator then needs a ClusterRole)."""

    peering: str | None = None
    """Join this kopf peering (kopf's peering CRDs must be installed): of the replicas
    in one peering, those with a lower priority pause while a higher one runs. Unset:
    standalone, no peering (the install manifests run one replica, Recreate)."""

    priority: int = 0
    """This replica's priority within its peering."""

    model_image: str = f"clipper-model:{__version__}"
    """Default model-server image (CPU), for ModelDeployments that set no image."""

    model_image_cuda: str = f"clipper-model:{__version__}-cuda"
    """Default model-server image for ModelDeployments that request nvidia.com/gpu."""

    frontend_image: str = f"clipper:{__version__}"
    """Default frontend image, for ClipperApps that set no spec.frontend.image."""

    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """imagePullPolicy of the containers the operator creates (and of its own, in the
    manifests it prints). Never: only images already on the node (an air-gapped or
    kind cluster), so a missing image fails at once instead of trying a registry."""

    workers: int = Field(default=4, ge=1, le=64)
    """Objects reconciled at once (one object is never reconciled twice at once)."""

    resync_seconds: float = Field(default=300.0, gt=0)
    """Reconcile every object at least this often, even when nothing was observed to
    change: a safety net for a missed watch event."""

    state_check_seconds: float = Field(default=15.0, gt=0)
    """How often the frontends of a ClipperApp with a shared selection-state backend
    (spec.state.backend: redis) are asked whether they reach it, for the app's
    StateBackendReachable condition."""

    error_backoff_seconds: float = Field(default=1.0, gt=0)
    """First delay before reconciling an object again after an error; it doubles on
    each consecutive error of that object, up to --error-backoff-max-seconds."""

    error_backoff_max_seconds: float = Field(default=120.0, gt=0)
    """Longest delay between retries of an object whose reconcile keeps failing."""

    model_startup_seconds: int = Field(default=600, ge=10)
    """How long a model server may take to load its model before Kubernetes restarts
    it (the startup probe's budget)."""

    model_cpu_request: str = "250m"
    """CPU request of a model-server container whose ModelDeployment requests none
    (and sets no CPU limit): no pod the operator creates is BestEffort."""

    model_memory_request: str = "256Mi"
    """Memory request of a model-server container whose ModelDeployment requests none
    (and sets no memory limit)."""

    frontend_cpu_request: str = "250m"
    """CPU request of a frontend container whose ClipperApp requests none."""

    frontend_memory_request: str = "256Mi"
    """Memory request of a frontend container whose ClipperApp requests none."""

    metrics_scraper_namespace: str | None = None
    """Namespace of the Prometheus that scrapes the model servers' metrics port. Each
    app's NetworkPolicy admits only its frontends to its models' pods; set this
    (and/or --metrics-scraper-labels) to admit the scraper to the metrics port."""

    metrics_scraper_labels: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Labels of the scraper's pods, comma-separated key=value pairs, e.g.
    app.kubernetes.io/name=prometheus (with --metrics-scraper-namespace: in that
    namespace; alone: in the models' namespace)."""

    liveness_endpoint: str | None = None
    """Serve kopf's liveness probe here, e.g. http://0.0.0.0:8080/healthz."""

    log_format: LogFormat | None = None
    """text, or json: one JSON object per line (time, level, logger, message, and the
    object a line is about), kopf's own lines included. Unset: as clipper --log-json
    says (text by default)."""

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("metrics_scraper_labels", mode="before")
    @classmethod
    def _labels(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = [part.strip() for part in value.split(",") if part.strip()]
        if any("=" not in pair for pair in pairs):
            raise ValueError(f"'{value}' is not a comma-separated list of key=value")
        return dict(pair.split("=", 1) for pair in pairs)
