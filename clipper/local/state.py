"""Where a running ``clipper run`` can be found: one folder per run.

``clipper apply`` and ``clipper status`` are separate processes; they find the run
through ``$CLIPPER_CACHE_DIR/run/<pid>/run.json`` (``~/.cache/clipper`` by default):
the control API's address, a random token that every call must carry, the
frontend's endpoints and the manifests served. The folder is private to the user
(0700, the file 0600), so another user on the machine cannot drive the run --
which would let them run code as its owner through a python model. The folder
also holds the frontend's routes file, and it is removed when the run ends; one
left by a run that was killed is removed by the next client that finds it dead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel


class RunInfo(BaseModel):
    """What a client needs to reach a run."""

    pid: int
    """The ``clipper run`` process."""
    control_url: str
    """``http://127.0.0.1:PORT`` of the control API."""
    token: str
    """Sent as ``Authorization: Bearer TOKEN`` with every control call."""
    manifests: list[str]
    """The absolute ``-f`` paths the run serves."""
    http_url: str | None = None
    """The frontend's REST endpoint."""
    grpc_address: str | None = None
    """The frontend's gRPC endpoint."""
    started_at: datetime


def cache_dir() -> Path:
    return Path(os.environ.get("CLIPPER_CACHE_DIR") or Path.home() / ".cache" / "clipper")


def runs_dir() -> Path:
    return cache_dir() / "run"


class RunDir:
    """The folder of the run in this process."""

    def __init__(self, root: Path | None = None) -> None:
        base = root or runs_dir()
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = base / str(os.getpid())
        shutil.rmtree(self.path, ignore_errors=True)  # a dead run's, with our pid
        self.path.mkdir(mode=0o700)

    @property
    def routes(self) -> Path:
        return self.path / "routes.yaml"

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    def publish(self, info: RunInfo) -> None:
        staged = self.path / ".run.json.tmp"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(info.model_dump_json(indent=2))
        os.replace(staged, self.info_path)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run whose process is alive; folders of dead runs are removed."""
    base = root or runs_dir()
    found: list[RunInfo] = []
    for folder in sorted(base.glob("*")) if base.is_dir() else []:
        info_path = folder / "run.json"
        if not folder.name.isdigit():
            continue
        if not _alive(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
            continue
        with contextlib.suppress(OSError, ValueError):
            found.append(RunInfo.model_validate_json(info_path.read_text()))
    return found
