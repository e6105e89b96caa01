"""Pure builders: typed API objects and settings in, Kubernetes objects (dicts) out.

No I/O and no kopf here, so every object the operator creates is unit-tested
without a cluster, and the handlers only decide *when* to apply them. Each
builder returns the complete object (owner reference included) for server-side
apply: applying it again is a no-op, and a field left out is a field removed.
"""

from clipper.operator.builders.disruption import build_model_disruption_budget, wants_budget
from clipper.operator.builders.events import build_event
from clipper.operator.builders.frontend import (
    build_frontend_deployment,
    build_frontend_rbac,
    build_frontend_service,
    frontend_endpoint,
)
from clipper.operator.builders.model import (
    build_model_deployment,
    build_model_service,
    template_hash,
)
from clipper.operator.builders.network import build_model_network_policy

__all__ = [
    "build_event",
    "build_frontend_deployment",
    "build_frontend_rbac",
    "build_frontend_service",
    "build_model_deployment",
    "build_model_disruption_budget",
    "build_model_network_policy",
    "build_model_service",
    "frontend_endpoint",
    "template_hash",
    "wants_budget",
]
