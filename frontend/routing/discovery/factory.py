"""Pick the discovery a frontend runs with, from its settings.

The one place that knows every implementation: a static routes file
(``--routes``) or the Kubernetes API (``--kubernetes-app``).
"""

from __future__ import annotations

from clipper.common.tasks import TaskRegistry
from clipper.frontend.routing.discovery import Discovery, EmptyDiscovery
from clipper.frontend.routing.discovery.static import StaticFileDiscovery
from clipper.frontend.settings import FrontendSettings


def make_discovery(settings: FrontendSettings, tasks: TaskRegistry | None = None) -> Discovery:
    if settings.kubernetes_app is not None:
        # Imported here: only a frontend that talks to Kubernetes loads its client.
        from clipper.frontend.routing.discovery.kubernetes import KubernetesDiscovery

        return KubernetesDiscovery(
            settings.kubernetes_app, settings.kubernetes_namespace, tasks=tasks
        )
    if settings.routes is not None:
        return StaticFileDiscovery(settings.routes)
    return EmptyDiscovery()
