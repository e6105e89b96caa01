"""The client side of the control API: find the run, call it.

Plain ``urllib``: ``clipper apply`` and ``clipper status`` are one call each and
must start fast. With several runs on the machine, ``apply`` picks the one that
serves the folder of the file applied, and otherwise asks for ``--pid``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clipper.common.errors import ClipperError, ConfigError, InvalidManifests
from clipper.local.state import RunInfo, live_runs


class NoRun(ClipperError):
    """No run to talk to, or no way to tell which."""


def find_run(pid: int | None = None, near: Sequence[Path] = ()) -> RunInfo:
    """The run to talk to: ``pid``'s, the only one, or the one serving ``near``'s folder."""
    runs = live_runs()
    if pid is not None:
        for run in runs:
            if run.pid == pid:
                return run
        raise NoRun(f"no clipper run with pid {pid} (running: {_pids(runs)})")
    if not runs:
        raise NoRun("no clipper run is running here: start one with `clipper run -f PATH`")
    if len(runs) == 1:
        return runs[0]
    serving = [run for run in runs if any(_serves(run, path) for path in near)]
    if len(serving) == 1:
        return serving[0]
    listed = "; ".join(f"pid {run.pid}: {', '.join(run.manifests)}" for run in runs)
    raise NoRun(f"several clipper runs ({listed}): pass --pid")


def _pids(runs: list[RunInfo]) -> str:
    return ", ".join(str(run.pid) for run in runs) or "none"


def _serves(run: RunInfo, path: Path) -> bool:
    path = path.resolve()
    return any(path == Path(m) or path.is_relative_to(Path(m)) for m in run.manifests) or any(
        path.parent == Path(m).parent for m in run.manifests
    )


class ControlClient:
    """Calls to one run's control API."""

    def __init__(self, run: RunInfo, timeout: float = 300.0) -> None:
        self.run = run
        self.timeout = timeout

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")

    def apply(self, paths: Sequence[Path]) -> list[str]:
        """Apply manifests; ``InvalidManifests`` with the run's reasons if refused."""
        body = {"paths": [str(Path(p).resolve()) for p in paths]}
        try:
            answer = self._call("POST", "/v1/apply", body)
        except urllib.error.HTTPError as exc:
            detail = _json(exc)
            if exc.code == 422 and "errors" in detail:
                raise InvalidManifests([ConfigError(e) for e in detail["errors"]]) from None
            raise NoRun(f"the run refused: {detail.get('error', exc.reason)}") from None
        return list(answer["applied"])

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.run.control_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.run.token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                loaded: dict[str, Any] = json.loads(answer.read())
                return loaded
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as exc:
            raise NoRun(
                f"cannot reach clipper run (pid {self.run.pid}) at {self.run.control_url}: {exc}"
            ) from None


def _json(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        loaded = json.loads(exc.read())
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
