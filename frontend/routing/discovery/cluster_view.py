"""What the Kubernetes discovery has seen, and the routing table it describes.

Pure (no Kubernetes client): the watches in ``kubernetes`` feed it objects as the
API sends them -- a complete list, then changes -- and it builds the table with
``clipper.common.routing_builder``, exactly as local mode builds its own, so a
frontend serves an app the same way wherever it runs.

A version's replicas are the ready endpoints of the EndpointSlices labelled with
its ModelDeployment and version (the EndpointSlice controller copies the labels of
the version's headless Service), at the port named ``grpc``. An endpoint that is
terminating is left out even if it still reports ready: it is draining, and new
requests belong elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from clipper.common import api
from clipper.common.cluster import GRPC_PORT_NAME, LABEL_MODEL, LABEL_VERSION
from clipper.common.errors import ConfigError
from clipper.common.routing import RoutingTable, host_port
from clipper.common.routing_builder import Endpoints, routing_table

log = logging.getLogger(__name__)

Obj = dict[str, Any]

APP, MODELS, SLICES = "clipperapp", "modeldeployments", "endpointslices"
"""The three kinds of objects the view holds."""


def slice_endpoints(obj: Obj) -> tuple[tuple[str, str], list[str]] | None:
    """((model, version), ready ``host:port``s) of one EndpointSlice; None if not ours."""
    labels = obj.get("metadata", {}).get("labels") or {}
    key = (labels.get(LABEL_MODEL), labels.get(LABEL_VERSION))
    port = next(
        (p.get("port") for p in obj.get("ports") or [] if p.get("name") == GRPC_PORT_NAME), None
    )
    if key[0] is None or key[1] is None or port is None:
        return None
    ready = []
    for endpoint in obj.get("endpoints") or []:
        conditions = endpoint.get("conditions") or {}
        # An unset ``ready`` means ready (the EndpointSlice API says so).
        if conditions.get("ready") is False or conditions.get("terminating"):
            continue
        addresses = endpoint.get("addresses") or []
        if addresses:  # all addresses of an endpoint are the same pod: use the first
            ready.append(host_port(addresses[0], int(port)))
    return (str(key[0]), str(key[1])), ready


class ClusterView:
    """The latest ClipperApp, ModelDeployments and EndpointSlices, by name."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.objects: dict[str, dict[str, Obj]] = {APP: {}, MODELS: {}, SLICES: {}}

    def replace(self, kind: str, items: Iterable[Obj]) -> None:
        """A complete list of ``kind`` (after a (re-)list)."""
        self.objects[kind] = {item["metadata"]["name"]: item for item in items}

    def apply(self, kind: str, event_type: str, obj: Obj) -> None:
        """One watch event (ADDED, MODIFIED, DELETED)."""
        name = obj["metadata"]["name"]
        if event_type == "DELETED":
            self.objects[kind].pop(name, None)
        else:
            self.objects[kind][name] = obj

    def endpoints(self) -> Endpoints:
        found: dict[tuple[str, str], set[str]] = {}
        for obj in self.objects[SLICES].values():
            parsed = slice_endpoints(obj)
            if parsed is not None:
                found.setdefault(parsed[0], set()).update(parsed[1])
        return {key: sorted(addresses) for key, addresses in found.items()}

    def _models(self) -> list[api.ModelDeployment]:
        models = []
        for raw in self.objects[MODELS].values():
            try:
                models.append(api.ModelDeployment.model_validate(raw))
            except ValidationError as exc:
                name = raw["metadata"]["name"]
                log.warning("ignoring ModelDeployment %s: %s", name, exc.errors()[0]["msg"])
        return models

    def table(self) -> RoutingTable:
        """The app's table (empty while the app does not exist); ``ConfigError`` when
        its models cannot be served together (two claim one model name)."""
        raw = self.objects[APP].get(self.app)
        if raw is None:
            return RoutingTable()
        try:
            app = api.ClipperApp.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(str(exc.errors()[0]["msg"]), f"ClipperApp/{self.app}") from None
        return routing_table([app], self._models(), self.endpoints())
