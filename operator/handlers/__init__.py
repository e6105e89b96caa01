"""kopf's side of the operator: what it watches, and what it does on each event.

``build_registry(ctx)`` returns a fresh ``kopf.OperatorRegistry`` (no global state:
tests and ``clipper operator`` each build their own). The handlers are thin: a
watch event only *enqueues* the object it concerns (see ``clipper.operator.queue``
for why), and the reconciles in ``clipper.operator.reconcile`` do the work.
"""

from clipper.operator.handlers.registry import build_registry

__all__ = ["build_registry"]
