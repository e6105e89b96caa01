"""Where the routing table comes from: the ``Discovery`` interface.

The frontend does not care who knows the deployment. A discovery yields
complete ``RoutingTable``s: the current one first, then a new one whenever
anything changes; the router applies each by difference. Two implementations:

* ``static.StaticFileDiscovery`` -- a YAML or JSON file, reloaded when it
  changes (``clipper run``, tests, bare-metal deployments);
* ``kubernetes.KubernetesDiscovery`` -- (with the operator) watches a ClipperApp,
  ModelDeployments' ``status.traffic`` and EndpointSlices and yields the table
  they describe. It is the only frontend module allowed to import a Kubernetes
  client (an import-linter contract), and it plugs in through ``factory.make_discovery``
  without touching the router, the batchers or the APIs.

The frontend tells the discovery whether each table was applied (``report``): a
table that passed the source's checks can still fail the frontend's own (a fixed
policy naming a model the app lacks), and the user must see that where they
made the change, not only in the frontend's log.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from clipper.common.routing import RoutingTable


class Discovery(ABC):
    """A source of routing tables."""

    @abstractmethod
    def watch(self) -> AsyncIterator[RoutingTable]:
        """Yield the current table, then each new table, until cancelled.

        The first table must come quickly (it is what the frontend starts with);
        a source that cannot produce one raises ``ConfigError``. Later problems
        (a file edited into an invalid state, an API server away) are logged and
        the last good table stays in force.
        """

    async def report(self, rejected: str | None) -> None:  # noqa: B027 -- optional hook
        """The frontend's verdict on the last table it was given: ``None`` when applied,
        else why it was rejected (the previous table stays in force). A source that
        can tell its author does (Kubernetes: a condition on the ClipperApp)."""


class EmptyDiscovery(Discovery):
    """No source: the frontend serves no apps (``--routes`` not given)."""

    async def watch(self) -> AsyncIterator[RoutingTable]:
        yield RoutingTable()
