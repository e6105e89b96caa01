"""kopf's settings, each chosen on purpose (applied by the startup handler).

- **Peering**: standalone by default. The install manifests run one replica with
  the ``Recreate`` strategy, so two never overlap; ``--peering NAME`` opts into
  kopf's peering for a hot standby (lower priorities pause while a higher one
  runs). Correctness never rests on it: status writes are conditional on the
  resourceVersion read, so even two active replicas cannot both advance a
  rollout -- the loser of a write gets ``Conflict`` and re-reads.
- **Persistence**: the operator keeps nothing of kopf's on its objects. It uses
  only watch-event handlers and an index, which store no progress and no
  diff-base, and no daemons or timers, which would each put a finalizer on every
  object (deleting a ModelDeployment would then hang whenever the operator is
  down). Should a stateful handler ever be added, its progress goes to
  annotations under ``operator.clipper.dev`` -- never to ``status.kopf``, which
  our CRDs' schemas would prune silently, making kopf retry forever.
- **Posting**: the operator posts its own Events (every rollout transition);
  kopf's are limited to warnings and errors about a handler, so ``kubectl
  describe`` is not flooded with framework chatter.
- **Watching**: server-side label selectors on every kind the operator creates
  (``clipper.operator.watched``) and on pods, so only its own objects stream in;
  watch requests end after 5 minutes and are re-opened (fresh connections through
  proxies and load balancers), with a client-side timeout a little longer, a 10 s
  connect timeout and a 1 s pause between reconnects; a stream silent for 70 s is
  presumed dead.
- **Networking**: API calls time out after 30 s and are retried by kopf with
  back-off 1, 2, 4, 8, 16 s (its own calls; reconciles retry through the queue).
- **Execution**: every handler is ``async``; the thread pool (kopf's sync calls
  only) needs no more than 2 threads. Queueing: kopf's per-object workers only
  enqueue, so they are capped generously and exit after 5 s idle.
"""

from __future__ import annotations

import logging

import kopf

from clipper.operator import naming
from clipper.operator.settings import OperatorSettings
from clipper.operator.watched import WATCHED

PREFIX = "operator.clipper.dev"


def configure(
    kopf_settings: kopf.OperatorSettings, settings: OperatorSettings, instance: str
) -> None:
    """Set ``kopf_settings`` (in place) for the operator described by ``settings``."""
    peering = kopf_settings.peering
    peering.priority = settings.priority
    peering.stealth = True  # no keep-alive lines in the log

    posting = kopf_settings.posting
    posting.level = logging.WARNING
    posting.reporting_component = naming.COMPONENT
    posting.reporting_instance = instance

    watching = kopf_settings.watching
    watching.server_timeout = 300
    watching.client_timeout = 330
    watching.connect_timeout = 10
    watching.reconnect_backoff = 1.0
    watching.inactivity_timeout = 70
    for watched in WATCHED:
        watching.label_selectors[watched.resource] = naming.MANAGED_SELECTOR

    networking = kopf_settings.networking
    networking.request_timeout = 30
    networking.connect_timeout = 10
    networking.error_backoffs = (1, 2, 4, 8, 16)

    kopf_settings.execution.max_workers = 2
    kopf_settings.queueing.worker_limit = 64
    kopf_settings.queueing.idle_timeout = 5.0

    persistence = kopf_settings.persistence
    persistence.finalizer = f"{PREFIX}/finalizer"
    persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    kopf_settings.process.ultimate_exiting_timeout = 30
