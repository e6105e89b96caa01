"""Static discovery: the routing table in a YAML or JSON file, reloaded on change.

The file is ``clipper.common.routing.RoutingTable`` as YAML or JSON (a ``.json``
suffix is parsed as JSON, anything else as YAML). An app's ``name`` may be left
out: it defaults to its key under ``apps``.

The file's *directory* is watched (with ``watchfiles``), not the file: editors
save by writing a new file and renaming it over the old one, and a Kubernetes
ConfigMap volume swaps a ``..data`` symlink, so a watch on the file itself would
miss both. Changes to the file's name or to ``..``-entries re-read the file
(other files in the directory, such as logs, are ignored); a table equal to the
current one is not yielded again. A file that fails to parse or validate
keeps the previous table in force, with an error in the log naming the field.

A directory that is deleted (and perhaps made again) cannot be followed: the
watch on it stays silent for good. So when the directory is gone or is no longer
the one watched, ``watch`` raises ``ConfigError``; the frontend's routing
follower is supervised, so it logs that, keeps the last table in force and
restarts the watch with a back-off, which reads the file again (and fails again
until the file is back).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import watchfiles
import yaml
from pydantic import ValidationError

from clipper.common.errors import ConfigError
from clipper.common.routing import RoutingTable
from clipper.frontend.routing.discovery import Discovery

log = logging.getLogger(__name__)


def load_routes(path: Path) -> RoutingTable:
    """Parse and validate a routes file; ``ConfigError`` names the file and field."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the routes file: {exc.strerror}", str(path)) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"not valid {_format(path)}: {exc}", str(path)) from None
    return parse_routes(data, str(path))


def parse_routes(data: Any, location: str = "routes") -> RoutingTable:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the routing table must be a mapping with an 'apps' key", location)
    apps = data.get("apps")
    if isinstance(apps, dict):
        for key, app in apps.items():
            if isinstance(app, dict):
                app.setdefault("name", key)
    try:
        return RoutingTable.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{where}: {first['msg']}", location) from None


def _format(path: Path) -> str:
    return "JSON" if path.suffix == ".json" else "YAML"


class StaticFileDiscovery(Discovery):
    """Routes from a file, reloaded whenever its directory changes."""

    def __init__(self, path: Path, debounce_ms: int = 50) -> None:
        self.path = path
        self.debounce_ms = debounce_ms
        self._dir = path.parent.absolute()

    async def watch(self) -> AsyncIterator[RoutingTable]:
        watched = _identity(self._dir)
        table = load_routes(self.path)
        yield table
        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every event
        async for _ in watchfiles.awatch(
            self._dir,
            watch_filter=self._relevant,
            debounce=self.debounce_ms,
            recursive=False,
        ):
            if _identity(self._dir) != watched:
                raise ConfigError(
                    "the routes file's directory was removed or replaced; the last table"
                    " stays in force until the file can be read again",
                    str(self.path),
                )
            try:
                new = load_routes(self.path)
            except ConfigError as exc:
                log.error("keeping the previous routing table: %s", exc)
                continue
            if new != table:
                log.info("routes file %s changed", self.path)
                table = new
                yield table

    def _relevant(self, change: watchfiles.Change, path: str) -> bool:
        """The file itself, a ConfigMap's ``..data`` swap, or the directory itself
        (removed); not its neighbours."""
        name = Path(path).name
        return name == self.path.name or name.startswith("..") or Path(path) == self._dir


def _identity(directory: Path) -> tuple[int, int] | None:
    """Which directory ``directory`` is (device, inode); None when it is gone."""
    try:
        stat = os.stat(directory)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino
