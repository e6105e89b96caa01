"""A ClipperApp's frontend knobs as ``clipper frontend`` flags.

The operator puts these into the frontend container's ``args`` and local mode
passes them to its frontend process, so a ClipperApp's ``spec.frontend`` means
the same on a cluster and on a laptop. The CRD bounds every value within what
``FrontendSettings`` accepts (a test checks), so a value ``kubectl apply``
accepted never makes a frontend crash-loop on its flags.
"""

from __future__ import annotations

from clipper.common.api.clipperapp import FrontendSpec


def frontend_flags(spec: FrontendSpec) -> list[str]:
    """Flags after ``clipper frontend`` for the settings a ClipperApp controls."""
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
    ]
