"""Build the frontend's routing table from ClipperApps and ModelDeployments.

One function, used by local mode (which knows its processes' ports) and by the
frontend's Kubernetes discovery (which reads EndpointSlices), so both build the
same table from the same objects. The traffic weights come from each
ModelDeployment's ``status.traffic`` -- the rollout state machine writes them --
and a version is routed to only while it has a ready replica: weights are
relative, so a canary with no ready replica simply gets no traffic instead of
failing its share of the requests. A Shadow rollout's candidate
(``status.shadowVersion``), and keepBest's challengers (``status.challengers``),
are listed with weight 0 and ``shadow: true``: the frontend mirrors queries to
them and never answers from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from clipper.common import api
from clipper.common.errors import ConfigError
from clipper.common.routing import (
    AppConfig,
    BatchingConfig,
    CacheConfig,
    ModelRoute,
    NewVersionConfig,
    RoutingTable,
    SelectionConfig,
    TensorSpec,
    VersionRoute,
)

Endpoints = Mapping[tuple[str, str], Sequence[str]]
"""Ready replica addresses (``host:port`` of the OIP gRPC endpoint) by
(ModelDeployment name, version)."""


def model_route(deployment: api.ModelDeployment, endpoints: Endpoints) -> ModelRoute:
    """The routes of one ModelDeployment: each version with traffic and a ready replica."""
    name = deployment.metadata.name
    versions = tuple(
        VersionRoute(
            version=t.version,
            weight=float(t.weight),
            replicas=tuple(endpoints.get((name, t.version), ())),
        )
        for t in deployment.status.traffic
        if t.weight > 0 and endpoints.get((name, t.version))
    )
    status = deployment.status
    shadows = [status.shadow_version, *(c.version for c in status.challengers)]
    for shadow in dict.fromkeys(v for v in shadows if v):
        addresses = tuple(endpoints.get((name, shadow), ()))
        if addresses and not any(v.version == shadow for v in versions):
            route = VersionRoute(version=shadow, weight=0.0, replicas=addresses, shadow=True)
            versions = (*versions, route)
    batching = deployment.spec.batching
    return ModelRoute(
        name=deployment.model_name,
        versions=versions,
        batching=BatchingConfig(
            adaptive=batching.adaptive,
            max_batch_size=batching.max_batch_size,
            batch_wait_ms=float(batching.batch_wait_millis),
        ),
    )


def _input(signature: api.TensorSignature | None) -> TensorSpec | None:
    if signature is None:
        return None
    return TensorSpec(
        name=signature.name, datatype=signature.datatype, shape=tuple(signature.shape)
    )


def app_config(
    app: api.ClipperApp, deployments: Iterable[api.ModelDeployment], endpoints: Endpoints
) -> AppConfig:
    """The frontend's view of ``app``; ModelDeployments it names but that are absent are left out.

    Raises ``ConfigError`` when two of its ModelDeployments serve the same model name.
    """
    models = app.select_models(deployments)
    seen: dict[str, str] = {}
    for model in models:
        if model.model_name in seen:
            raise ConfigError(
                f"ModelDeployments {seen[model.model_name]} and {model.metadata.name} both"
                f" serve the model name {model.model_name!r}",
                location=f"ClipperApp/{app.metadata.name}",
            )
        seen[model.model_name] = model.metadata.name
    spec = app.spec
    policy = spec.selection_policy
    return AppConfig(
        name=app.metadata.name,
        models=tuple(model_route(model, endpoints) for model in models),
        latency_slo_ms=float(spec.latency_slo_millis),
        default_output=spec.default_output,
        selection=SelectionConfig(type=policy.type, params=dict(policy.parameters or {})),
        new_version=NewVersionConfig(
            start=policy.new_version.start,
            prior_observations=policy.new_version.prior_observations,
        ),
        cache=CacheConfig(enabled=spec.cache.enabled, max_bytes=spec.cache.max_bytes),
        input=_input(spec.input),
        confidence_threshold=policy.confidence_threshold,
    )


def routing_table(
    apps: Iterable[api.ClipperApp],
    deployments: Iterable[api.ModelDeployment],
    endpoints: Endpoints,
) -> RoutingTable:
    """The whole table: every app, keyed by its name."""
    deployments = list(deployments)
    configs = [app_config(app, deployments, endpoints) for app in apps]
    return RoutingTable(apps={config.name: config for config in configs})
