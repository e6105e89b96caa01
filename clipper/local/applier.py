"""Changes to a running ``clipper run``: ``clipper apply`` and saved manifest files.

Both end in ``Store.apply`` (see ``store`` for what an apply means). Reading the
files and checking models happen in a thread -- a ``module:function`` model is
imported in a child process to check it -- so the runner's loop keeps streaming
logs and following health meanwhile; the store itself changes on the loop, under
a lock, so applies never interleave and never race the reconcile loop. A refused
apply raises ``InvalidManifests`` (the control API answers 422); a refused file
is logged and the run keeps serving what it served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from clipper.common import manifests
from clipper.common.errors import ConfigError, InvalidManifests
from clipper.common.manifests import Manifests
from clipper.local import ports
from clipper.local.store import Applied, Store
from clipper.local.watch import manifest_changes

log = logging.getLogger(__name__)


class Applier:
    """Applies manifests to the store, one change at a time."""

    def __init__(
        self, store: Store, forget: Callable[[str], None], changed: Callable[[], None]
    ) -> None:
        self.store = store
        self._forget = forget
        self._changed = changed
        self._lock = asyncio.Lock()
        self._closed = False

    async def close(self) -> None:
        """Refuse further changes; wait for the one in flight."""
        async with self._lock:
            self._closed = True

    async def apply_paths(self, paths: Sequence[str]) -> list[str]:
        """``clipper apply -f PATH...``: what changed, as kubectl prints it."""
        found, errors = await asyncio.to_thread(manifests.collect, *paths, standalone=False)
        if not errors and not found.apps and not found.deployments:
            errors = [ConfigError("no manifests found", ", ".join(paths))]
        if errors:
            raise InvalidManifests(errors)
        return [str(result) for result in await self.apply(found, prune=set())]

    async def watch(self, paths: Sequence[Path]) -> None:
        """Apply every saved manifest file of ``paths``, until cancelled."""
        async for files in manifest_changes(paths):
            try:
                await self.apply_files(files)
            except Exception:  # a bug must not stop the watch
                log.exception("applying %s failed", ", ".join(map(str, sorted(files))))

    async def apply_files(self, files: set[Path]) -> None:
        """Saved (or deleted) files: apply what they hold, prune what they lost."""
        present = sorted(f for f in files if f.exists())
        found, errors = Manifests(), list[ConfigError]()
        if present:
            found, errors = await asyncio.to_thread(manifests.collect, *present, standalone=False)
        try:
            if errors:
                raise InvalidManifests(errors)
            await self.apply(found, prune=files)
        except InvalidManifests as exc:
            names = ", ".join(str(f) for f in sorted(files))
            log.error("ignored the change to %s; still serving as before: %s", names, exc)

    async def apply(self, found: Manifests, prune: set[Path]) -> list[Applied]:
        async with self._lock:
            if self._closed:
                raise InvalidManifests([ConfigError("clipper run is stopping")])
            changed = Manifests(
                deployments=self.store.changed_deployments(found), sources=found.sources
            )
            errors = await asyncio.to_thread(manifests.check_model_uris, changed)
            if errors:
                raise InvalidManifests(errors)
            results = self.store.apply(found, prune, check_models=False)
        for result in results:
            if result.result != "unchanged":
                log.info("%s", result)
            if result.result == "deleted" and result.kind == "ModelDeployment":
                self._forget(result.name)
        touched = {r.name for r in results if r.kind == "ClipperApp" and r.result != "unchanged"}
        for ignored in ports.ignored_ports(self.store.apps, among=touched):
            log.warning("%s asks for other frontend ports: local mode runs one frontend", ignored)
        self._changed()
        return results
