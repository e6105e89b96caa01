"""A ClipperApp's frontend knobs as ``clipper frontend`` flags.

The operator puts these into the frontend container's ``args`` and local mode
passes them to its frontend process, so a ClipperApp's ``spec.frontend`` means
the same on a cluster and on a laptop. The CRD bounds every value within what
``FrontendSettings`` accepts (a test checks), so a value ``kubectl apply``
accepted never makes a frontend crash-loop on its flags.
"""

from __future__ import annotations

from clipper.common.api.clipperapp import FrontendSpec, StateSpec

STATE_URL_ENV = "CLIPPER_FRONTEND_STATE_URL"
"""Where the Redis URL reaches the frontend: the environment, never its args (a URL
from a Secret may hold a password, and args are visible to every ``ps``)."""


def frontend_flags(
    spec: FrontendSpec, state: StateSpec | None = None, namespace: str | None = None
) -> list[str]:
    """Flags after ``clipper frontend`` for the settings a ClipperApp controls (the
    state backend's URL excepted: see ``STATE_URL_ENV``)."""
    return [*_frontend(spec), *state_flags(state or StateSpec(), namespace)]


def state_flags(state: StateSpec, namespace: str | None = None) -> list[str]:
    """``spec.state`` as flags; the key prefix defaults to ``clipper:NAMESPACE`` (the
    frontend adds the app's name), so apps sharing a Redis never share keys."""
    if not state.shared:
        return []
    prefix = state.key_prefix or (f"clipper:{namespace}" if namespace else "clipper")
    return [
        "--state-backend",
        state.backend,
        "--state-key-prefix",
        prefix,
        "--query-log-ttl-s",
        str(state.query_log_ttl_seconds),
        "--query-log-max-bytes",
        str(state.query_log_max_bytes),
    ]


def _frontend(spec: FrontendSpec) -> list[str]:
    return [
        "--queue-capacity",
        str(spec.queue_capacity),
        "--aimd-budget-fraction",
        repr(float(spec.aimd_budget_fraction)),
        "--feedback-max-bytes",
        str(spec.feedback_max_bytes),
        "--drain-delay-s",
        str(spec.drain_delay_seconds),
        "--workers",
        str(spec.workers),
        "--grpc-server",
        spec.grpc_server,
    ]
