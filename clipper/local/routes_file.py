"""The routes file: how the runner tells the frontend where everything runs.

The frontend's static discovery reloads the file when it changes, so the runner
only ever writes it -- no API between them, and the same frontend code runs in a
cluster with another discovery. The file is written atomically (a temporary file
in the same directory, then ``rename``), so the frontend never reads half a
table; the temporary name starts with a dot and differs from the file's, which
the frontend's watch ignores. An unchanged table is not written again.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from clipper.common.routing import RoutingTable


class RoutesFile:
    """One routes file, rewritten whenever the table changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.table: RoutingTable | None = None

    def write(self, table: RoutingTable) -> bool:
        """Write ``table`` unless it is what the file holds; whether it was written."""
        if table == self.table:
            return False
        staged = self.path.with_name(f".{self.path.name}.tmp")
        staged.write_text(yaml.safe_dump(table.model_dump(mode="json"), sort_keys=False))
        os.replace(staged, self.path)
        self.table = table
        return True

    def replicas(self) -> set[tuple[str, str, str]]:
        """``(model, version, address)`` of every replica in the table last written."""
        if self.table is None:
            return set()
        return {
            (model.name, version.version, address)
            for app in self.table.apps.values()
            for model in app.models
            for version in model.versions
            for address in version.replicas
        }
