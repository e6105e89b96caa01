"""Watch the ``-f`` paths: a saved manifest is applied, as ``kubectl apply -f`` would be.

The folders are watched, not the files (editors save by writing a new file and
renaming it over the old one), non-recursively, as ``clipper run -f DIR`` reads
only the folder's own files. Only manifest files count: a ``-f FILE`` itself, or
a ``.yaml``/``.yml``/``.json`` file directly in a ``-f DIR`` (not hidden: editors'
swap and backup files are ignored), so model artifacts written next to the
manifests never trigger anything. Changes are batched over a short debounce and
handed over as the set of files that changed, deleted ones included.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import watchfiles

from clipper.common.manifests.loading import SUFFIXES

DEBOUNCE_MS = 200


class ManifestFilter:
    """Which paths are manifests of the ``-f`` paths."""

    def __init__(self, paths: Sequence[Path]) -> None:
        resolved = [p.resolve() for p in paths]
        self.dirs = {p for p in resolved if p.is_dir()}
        self.files = {p for p in resolved if not p.is_dir()}

    @property
    def roots(self) -> set[Path]:
        return self.dirs | {f.parent for f in self.files}

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return self.matches(Path(path))

    def matches(self, path: Path) -> bool:
        if path in self.files:
            return True
        hidden = path.name.startswith(".")
        return path.parent in self.dirs and path.suffix in SUFFIXES and not hidden


async def manifest_changes(paths: Sequence[Path]) -> AsyncIterator[set[Path]]:
    """Yield the manifest files that changed, batch by batch, until cancelled."""
    accept = ManifestFilter(paths)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every event
    async for changes in watchfiles.awatch(
        *sorted(accept.roots), watch_filter=accept, debounce=DEBOUNCE_MS, recursive=False
    ):
        yield {Path(path) for _, path in changes}
