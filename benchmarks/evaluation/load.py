"""The one load generator per protocol: ``wrk`` for HTTP, ``ghz`` for gRPC.

Both are compiled, closed-loop tools run as child processes, so the generator's
own cost is small and the same for every system measured; a Python client on a
2-core machine would measure itself. Every run is bounded by ``-d``/``-z``
seconds (and wrk's ``--timeout``). Bodies are either a fixed list that each
connection cycles through, or a *stream*: a sequence of item ids written into
the Lua script, sent in order across all connections (one wrk thread), which is
how the cache section replays Zipf and recommendation streams.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GHZ_VERSION = "v0.120.0"
CACHE_BIN = Path.home() / ".cache/clipper/bin"
PROTO = Path(__file__).resolve().parents[2] / "clipper/common/protocol/grpc_predict_v2.proto"


@dataclass
class Result:
    rps: float = 0.0
    """Successful (2xx / OK) answers per second."""
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    errors: int = 0
    """Non-2xx answers, socket errors and failed calls."""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tool(name: str) -> str | None:
    local = CACHE_BIN / name
    return str(local) if local.exists() else shutil.which(name)


def missing_tools(which: tuple[str, ...] = ("wrk", "ghz")) -> list[str]:
    notes = []
    if "wrk" in which and tool("wrk") is None:
        notes.append("wrk not found: HTTP runs skipped (Debian/Ubuntu: apt-get install wrk)")
    if "ghz" in which and tool("ghz") is None:
        notes.append(
            "ghz not found: gRPC runs skipped (GOBIN=~/.cache/clipper/bin go install "
            f"github.com/bojand/ghz/cmd/ghz@{GHZ_VERSION})"
        )
    return notes


def _quoted(texts: list[str]) -> str:
    return ",\n".join(f"[==[{t}]==]" for t in texts)  # JSON may hold "]]"


def fixed_script(bodies: list[str], headers: dict[str, str] | None = None) -> Path:
    """Each connection cycles through ``bodies`` (a shared counter: one wrk thread)."""
    lines = [f"local bodies = {{{_quoted(bodies)}}}", "local i = 0", 'wrk.method = "POST"']
    for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
        lines.append(f'wrk.headers["{key}"] = "{value}"')
    lines += [
        "request = function()",
        "  i = i % #bodies + 1",
        "  return wrk.format(nil, nil, nil, bodies[i])",
        "end",
    ]
    return _save("\n".join(lines) + "\n")


def stream_script(ids: list[int], prefix: str, tails: list[str], suffix: str) -> Path:
    """Request ``k`` sends ``prefix .. ids[k] .. tails[ids[k] % #tails] .. suffix``: the
    item id is the first value of the row, the tail the rest of a real digit."""
    lines = [
        f"local ids = {{{','.join(map(str, ids))}}}",
        f"local tails = {{{_quoted(tails)}}}",
        "local i = 0",
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/json"',
        "request = function()",
        "  i = i % #ids + 1",
        "  local id = ids[i]",
        f"  local body = [==[{prefix}]==] .. id .. tails[id % #tails + 1] .. [==[{suffix}]==]",
        "  return wrk.format(nil, nil, nil, body)",
        "end",
    ]
    return _save("\n".join(lines) + "\n")


def _save(text: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="clipper-eval-")) / "load.lua"
    path.write_text(text)
    return path


def wrk(url: str, script: Path, concurrency: int, seconds: float) -> Result:
    command = [tool("wrk") or "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
    command += ["--latency", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = _int(r"(\d+) requests in", out)
    non_2xx = _int(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: (.*)", out)
    errors = non_2xx + (sum(int(n) for n in re.findall(r"\d+", socket.group(1))) if socket else 0)
    duration = max(1, round(seconds))
    return Result(
        rps=max(0, requests - non_2xx) / duration,
        p50_ms=_ms(out, "50%"),
        p99_ms=_ms(out, "99%"),
        requests=requests,
        errors=errors,
        seconds=duration,
    )


def _int(pattern: str, out: str) -> int:
    found = re.search(pattern, out)
    return int(found.group(1)) if found else 0


def _ms(out: str, percentile: str) -> float:
    found = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", out)
    if found is None:
        return 0.0
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def ghz(address: str, request: Path, concurrency: int, seconds: float) -> Result:
    duration = max(1, round(seconds))
    command = [
        tool("ghz") or "ghz",
        "--insecure",
        "--proto",
        str(PROTO),
        "--call",
        "inference.GRPCInferenceService/ModelInfer",
        "-B",
        str(request),
        "-c",
        str(concurrency),
        "--connections",
        "1",
        "-z",
        f"{duration}s",
        "--timeout",
        "10s",
        "--format",
        "json",
        address,
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60).stdout
    report = json.loads(out)
    latencies = {d["percentage"]: d["latency"] / 1e6 for d in report["latencyDistribution"] or []}
    codes = report.get("statusCodeDistribution") or {}
    # Calls still in flight when the time is up end as Unavailable/Canceled: not errors.
    errors = sum(n for code, n in codes.items() if code not in ("OK", "Unavailable", "Canceled"))
    ok = codes.get("OK", 0)
    return Result(
        rps=ok / duration,
        p50_ms=latencies.get(50, 0.0),
        p99_ms=latencies.get(99, 0.0),
        requests=sum(codes.values()),
        errors=errors,
        seconds=duration,
    )
