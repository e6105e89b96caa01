"""Versions are immutable: a version name, once it exists, names one template.

A version is what a rollout moves traffic to and what a rollback returns to, so
it must mean the same thing every time, as a Deployment's revisions and KServe's
and Seldon's model revisions do. Were a new template under an existing name
followed, a retained version would come back as something never canaried, with
the skip-the-canary shortcut meant for known-good versions, and a serving one
would change under live traffic with nothing to roll back to. So such a spec is
refused: nothing changes in traffic or in the running versions, and the
``Degraded`` condition (reason ``VersionImmutable``) says what differs until the
user restores the template or picks a new ``spec.version``.

Only ``VersionTemplate`` fields count (what the model-server processes run);
``replicas``, batching and the rollout settings steer an existing version and
change in place. One exception: a version that failed its rollout and has never
served (no ``promotedAt``) may be fixed under its own name -- that restarts its
rollout from the beginning, canary included, so nothing skips a check.
"""

from __future__ import annotations

from typing import Any

from clipper.common.api import VersionStatus, VersionTemplate

_SHOWN = 60
"""Values longer than this are named, not shown, in the message."""


def _show(value: Any) -> str:
    text = "unset" if value is None else str(value)
    return text if len(text) <= _SHOWN else "..."


def differences(old: VersionTemplate, new: VersionTemplate) -> list[str]:
    """``field: old -> new`` for every template field that differs (camelCase names)."""
    found = []
    for name, info in VersionTemplate.model_fields.items():
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            label = info.alias or name
            shown = f"{_show(_plain(before))} -> {_show(_plain(after))}"
            found.append(label if shown == "... -> ..." else f"{label}: {shown}")
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def refusal(entry: VersionStatus | None, template: VersionTemplate) -> str | None:
    """Why a spec asking for ``template`` under ``entry``'s name is refused (None: it is not)."""
    if entry is None or entry.template == template:
        return None
    if entry.phase == "Failed" and entry.promoted_at is None:
        return None  # never served: fixing it is a new rollout of it
    what = "; ".join(differences(entry.template, template))
    name = entry.version
    return (
        f"{name} already exists with a different template ({what});"
        f" versions are immutable: choose a new spec.version, or restore {name}'s template"
    )
