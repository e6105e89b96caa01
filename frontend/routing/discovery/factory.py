"""Pick the discovery a frontend runs with, from its settings.

The one place that knows every implementation; the Kubernetes discovery is
added here (and nowhere else) when the operator brings it.
"""

from __future__ import annotations

from clipper.frontend.routing.discovery import Discovery, EmptyDiscovery
from clipper.frontend.routing.discovery.static import StaticFileDiscovery
from clipper.frontend.settings import FrontendSettings


def make_discovery(settings: FrontendSettings) -> Discovery:
    if settings.routes is not None:
        return StaticFileDiscovery(settings.routes)
    return EmptyDiscovery()
