"""Reconciling one object: read it, decide with pure functions, write the result.

``reconcile_model`` drives a ModelDeployment through the rollout state machine
(``clipper.common.rollout``); ``reconcile_app`` keeps a ClipperApp's frontend and
status in step with its models. Both are level-triggered and idempotent: they
read everything they decide on, so running one twice, or after a restart, does
the same thing once.
"""

from clipper.operator.reconcile.apps import reconcile_app
from clipper.operator.reconcile.models import reconcile_model

__all__ = ["reconcile_app", "reconcile_model"]
