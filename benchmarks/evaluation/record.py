"""One envelope for every result file: the machine, the versions and the date.

A number read months later is only worth what its context says: how many
cores, which CPU, how loaded the machine was when the section started, which
commit of ours and which versions of the peers. Every section's JSON carries
that beside its data, so ``report`` can print it under each table.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS = Path.home() / ".cache/clipper/eval/results"
OURS = ("numpy", "scikit-learn", "torch", "grpcio", "aiohttp", "protobuf")


@dataclass
class Options:
    """What every section is told: where to write, how long to run."""

    results: Path = DEFAULT_RESULTS
    quick: bool = False
    seconds: float = 3.0
    """Seconds per load cell (``--quick``: 1)."""
    extra: dict[str, Any] = field(default_factory=dict)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def gpu() -> dict[str, Any]:
    """The CUDA device, if torch sees one; else why not."""
    try:
        import torch
    except ImportError:
        return {"available": False, "why": "torch is not installed"}
    if not torch.cuda.is_available():
        return {"available": False, "why": "no CUDA device on this machine"}
    return {"available": True, "name": torch.cuda.get_device_name(0)}


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": memory_gib(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "kernel": platform.release(),
        "gpu": gpu(),
    }


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions(peers: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    ours = {}
    for name in OURS:
        try:
            ours[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            ours[name] = None
    return {
        "python": sys.version.split()[0],
        "clipper_commit": commit(),
        "ours": ours,
        "peers": peers or {},
    }


def envelope(section: str, options: Options, started: dict[str, Any]) -> dict[str, Any]:
    """The context of a section, taken when it starts (the load average then)."""
    return {
        "section": section,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": started,
        "versions": versions(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
    }


def write(section: str, head: dict[str, Any], data: dict[str, Any], options: Options) -> Path:
    options.results.mkdir(parents=True, exist_ok=True)
    body = {**head, "finished": datetime.now(UTC).isoformat(timespec="seconds"), "data": data}
    if "peer_versions" in data:
        body["versions"]["peers"] = data["peer_versions"]
    path = options.results / f"{section}.json"
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(body, indent=1, default=_plain))
    staged.replace(path)
    return path


def read(results: Path) -> dict[str, dict[str, Any]]:
    """Every section's saved result, by section."""
    found = {}
    for path in sorted(Path(results).glob("*.json")):
        body = json.loads(path.read_text())
        found[body["section"]] = body
    return found


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")
