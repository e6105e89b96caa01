"""What the operator watches of what it creates: one table, read by kopf's settings,
the handlers and the RBAC test.

Every object the operator creates carries ``app.kubernetes.io/managed-by:
clipper-operator`` and the name of its owner (``clipper.dev/model`` or
``clipper.dev/app``). Each kind below is watched with that label as a server-side
selector, so the operator never streams anyone else's objects, and an event on
one of them (added, modified, deleted) enqueues its owner: a child deleted by
mistake, or edited by hand, is put back by the next reconcile within moments,
not at the resync. Pods are not created by the operator but carry the labels of
their Deployment's template; their events tell readiness and crash loops.

To watch a new kind the operator creates: add a row here, grant ``watch`` on it
in ``builders/install.py`` (a unit test fails until you do), and make its builder
put the owner's label on it (``clipper.dev/model`` or ``clipper.dev/app``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Watched:
    """One kind, as kopf names a resource: ``group`` is ``""`` for the core group."""

    group: str
    version: str
    plural: str

    @property
    def resource(self) -> tuple[str, str] | tuple[str, str, str]:
        """How kopf names it, in ``kopf.on.event(*resource)`` and as the key of
        ``settings.watching.label_selectors``: ``("v1", "pods")`` for the core group."""
        return (
            (self.group, self.version, self.plural) if self.group else (self.version, self.plural)
        )


WATCHED: tuple[Watched, ...] = (
    Watched("apps", "v1", "deployments"),
    Watched("", "v1", "pods"),
    Watched("", "v1", "services"),
    Watched("", "v1", "serviceaccounts"),
    Watched("rbac.authorization.k8s.io", "v1", "roles"),
    Watched("rbac.authorization.k8s.io", "v1", "rolebindings"),
    Watched("networking.k8s.io", "v1", "networkpolicies"),
    Watched("policy", "v1", "poddisruptionbudgets"),
)
"""Every kind whose events reconcile its owner (see the module docstring)."""
