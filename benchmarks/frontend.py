"""What the frontend serves: req/s, p50 and p99 under an external load generator.

For each model (noop, the digits logistic regression, and ``linear``: a model
whose cost grows linearly with the batch, for which batching cannot pay), each
batching mode (adaptive AIMD, fixed batches of up to 32, no batching) and each
concurrency (1, 16, 64), one frontend process and one model container on
127.0.0.1 are loaded by:

* REST: ``wrk`` posting single-row Clipper requests (``{"input": [64 pixels]}``,
  rotating through 64 different digits) to ``/{app}/predict``;
* gRPC: ``ghz`` sending single-row OIP ``ModelInfer`` calls with raw tensors.

The cache is off (every query reaches the model) and the latency objective is
100 ms; ``dflt`` counts queries answered with the default output, so a fast
but empty answer cannot pass for throughput. ``batch`` is the mean rows per
batch the frontend sent. A second table calls each container directly over
gRPC (ghz, no frontend) to give the frontend's added latency at concurrency 1.

Tools: ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``) and ``ghz`` (``GOBIN=
~/.cache/clipper/bin go install github.com/bojand/ghz/cmd/ghz@v0.120.0``).
A missing tool skips its protocol with a note. Every run is bounded
(``--seconds`` each: about four minutes in all; ``--quick``: under two).

    python benchmarks/frontend.py [--quick] [--seconds 3] [--models noop,digits,linear]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipper.common.protocol import pb
from clipper.common.protocol.tensors import add_raw_inputs
from clipper.testing.frontend import (
    FrontendProcess,
    metric,
    route,
    start_model_servers,
    write_routes,
)
from clipper.testing.latency import URI, LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits_batch, train_logistic_regression

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "clipper/common/protocol/grpc_predict_v2.proto"
GHZ_VERSION = "v0.120.0"
MODES = {
    "adaptive": {"adaptive": True, "max_batch_size": 256},
    "fixed-32": {"adaptive": False, "max_batch_size": 32},
    "none": {"adaptive": False, "max_batch_size": 1},
}
LINEAR_ROW_S = 0.0002  # the linear model: 0.2 ms of work per row, nothing per batch


@dataclass
class Result:
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    defaults: int = 0
    batch: float = 0.0

    def cells(self) -> list[str]:
        if not self.rps:
            return ["-"] * 4
        bad = self.errors + self.defaults
        return [f"{self.rps:,.0f}", f"{self.p50_ms:.1f}", f"{self.p99_ms:.1f}", f"{bad}"]


def tool(name: str) -> str | None:
    local = Path.home() / ".cache/clipper/bin" / name
    return str(local) if local.exists() else shutil.which(name)


def wrk(url: str, bodies: list[str], concurrency: int, seconds: float) -> Result:
    script = Path(tempfile.mkdtemp()) / "bodies.lua"
    quoted = ",\n".join(f"[==[{body}]==]" for body in bodies)  # JSON may hold "]]"
    script.write_text(
        "local bodies = {" + quoted + "}\nlocal i = 0\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
    )
    command = [tool("wrk") or "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
    command.append("--latency")
    out = subprocess.run(
        [*command, "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    result = Result(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_wrk_ms(out, "50%"),
        p99_ms=_wrk_ms(out, "99%"),
        errors=int(errors.group(1)) if errors else 0,
    )
    if socket_errors:
        result.errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return result


def _wrk_ms(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def ghz(address: str, request: Path, concurrency: int, seconds: float) -> Result:
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
        f"{max(1, round(seconds))}s",
        "--format",
        "json",
        address,
    ]
    report = json.loads(subprocess.run(command, capture_output=True, text=True).stdout)
    latencies = {d["percentage"]: d["latency"] / 1e6 for d in report["latencyDistribution"] or []}
    codes = report.get("statusCodeDistribution") or {}
    # Calls still in flight when the run's time is up end as Unavailable/Canceled: not
    # the server's errors. Anything else is.
    errors = sum(n for code, n in codes.items() if code not in ("OK", "Unavailable", "Canceled"))
    ok = codes.get("OK", 0)
    return Result(ok / seconds, latencies.get(50, 0.0), latencies.get(99, 0.0), errors)


def request_file(directory: Path, model: str, pixels: np.ndarray, rows: int = 1) -> Path:
    request = pb.ModelInferRequest(model_name=model)
    add_raw_inputs(request, {"input": pixels[:rows]})
    path = directory / f"{model}-{rows}.bin"
    path.write_bytes(request.SerializeToString())
    return path


@contextmanager
def containers(directory: Path, names: list[str]) -> Iterator[dict[str, ModelServer]]:
    control = LatencyControl(directory / "latency")
    control.set(0.0, LINEAR_ROW_S)
    shape = ["--input-datatype", "FP64", "--input-shape=-1,64", "--threads", "1"]
    specs = {
        "noop": {"framework": "noop", "name": "noop", "args": shape},
        "digits": {
            "framework": "sklearn",
            "name": "digits",
            "uri": train_logistic_regression(directory),
            "args": ["--threads", "1"],
        },
        "linear": {
            "framework": "python",
            "name": "linear",
            "uri": URI,
            "args": shape,
            "env": control.env,
        },
    }
    servers = start_model_servers([specs[n] for n in names])
    try:
        yield dict(zip(names, servers, strict=True))
    finally:
        for server in servers:
            server.stop()


def counters(frontend: FrontendProcess, app: str) -> tuple[float, float, float]:
    text = frontend.metrics()
    return (
        metric(text, "clipper_frontend_default_outputs_total", app=app),
        metric(text, "clipper_frontend_batch_size_sum", model=app),
        metric(text, "clipper_frontend_batch_size_count", model=app),
    )


def measure(frontend: FrontendProcess, app: str, run: object, *args: object) -> Result:
    before = counters(frontend, app)
    result: Result = run(*args)  # type: ignore[operator]
    after = counters(frontend, app)
    result.defaults = int(after[0] - before[0])
    batches = after[2] - before[2]
    result.batch = (after[1] - before[1]) / batches if batches else 0.0
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s per run instead of 3")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per run")
    parser.add_argument("--models", default="noop,digits,linear")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    seconds = args.seconds or (1 if args.quick else 3)
    names = args.models.split(",")
    modes = args.modes.split(",")
    levels = [int(c) for c in args.concurrency.split(",")]
    have_wrk, have_ghz = tool("wrk") is not None, tool("ghz") is not None
    if not have_wrk:
        print("wrk not found: REST runs skipped (Debian/Ubuntu: apt-get install wrk)")
    if not have_ghz:
        print(
            "ghz not found: gRPC runs skipped (GOBIN=~/.cache/clipper/bin "
            f"go install github.com/bojand/ghz/cmd/ghz@{GHZ_VERSION})"
        )
    pixels = digits_batch(64)
    bodies = [json.dumps({"input": row.tolist()}) for row in pixels]
    print(f"{os.cpu_count()} CPUs, {seconds:g} s per run; load average {os.getloadavg()[0]:.1f}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, containers(Path(tmp), names) as servers:
        directory = Path(tmp)
        requests = {n: request_file(directory, n, pixels) for n in names}
        direct = {}
        if have_ghz:
            for name, server in servers.items():
                for c in levels:
                    direct[(name, c)] = ghz(server.address, requests[name], c, seconds)
        rows = []
        multi = []
        for mode in modes:
            apps = [
                route(
                    n,
                    {n: [servers[n].address]},
                    latency_slo_ms=100,
                    default_output=-1,
                    cache={"enabled": False},
                    batching={n: MODES[mode]},
                )
                for n in names
            ]
            routes = write_routes(directory / f"routes-{mode}.yaml", *apps)
            with FrontendProcess(routes, args=["--seed", "0"]).wait_ready() as frontend:
                for name in names:
                    for c in levels:
                        rest = grpc_ = Result()
                        if have_wrk:
                            url = f"{frontend.url}/{name}/predict"
                            rest = measure(frontend, name, wrk, url, bodies, c, seconds)
                        if have_ghz:
                            grpc_ = measure(
                                frontend, name, ghz, frontend.grpc_address,
                                requests[name], c, seconds,
                            )  # fmt: skip
                        rows.append((name, mode, c, rest, grpc_))
                    if mode == "adaptive" and name != "linear":  # linear: 5,000 rows/s at most
                        multi.append((name, *multi_row(frontend, name, pixels, seconds)))
    print_tables(rows, direct, levels)
    print_multi(multi)
    print(f"\n(took {time.monotonic() - started:.0f} s; load average now {os.getloadavg()[0]:.1f})")
    return 0


MULTI_ROWS = 32
MULTI_CONCURRENCY = 16


def multi_row(
    frontend: FrontendProcess, name: str, pixels: np.ndarray, seconds: float
) -> tuple[Result, Result]:
    """Requests of 32 rows each: what raw tensors are for."""
    rest = grpc_ = Result()
    if tool("wrk"):
        bodies = [json.dumps({"input_batch": np.roll(pixels, i, 0)[:MULTI_ROWS].tolist()})
                  for i in range(8)]  # fmt: skip
        url = f"{frontend.url}/{name}/predict"
        rest = measure(frontend, name, wrk, url, bodies, MULTI_CONCURRENCY, seconds)
    if tool("ghz"):
        request = request_file(Path(tempfile.mkdtemp()), name, pixels, MULTI_ROWS)
        grpc_ = measure(
            frontend, name, ghz, frontend.grpc_address, request, MULTI_CONCURRENCY, seconds
        )
    return rest, grpc_


def print_multi(multi: list[tuple[str, Result, Result]]) -> None:
    if not multi:
        return
    print()
    print(f"Requests of {MULTI_ROWS} rows (adaptive batching, concurrency {MULTI_CONCURRENCY}):")
    head = ["model", "REST rows/s", "p99 ms", "errors", "gRPC raw rows/s", "p99 ms", "errors",
            "gRPC/REST"]  # fmt: skip
    table = []
    for name, rest, grpc_ in multi:
        ratio = f"{grpc_.rps / rest.rps:.2f}" if rest.rps and grpc_.rps else "-"
        table.append([
            name,
            f"{rest.rps * MULTI_ROWS:,.0f}" if rest.rps else "-",
            f"{rest.p99_ms:.1f}" if rest.rps else "-",
            str(rest.errors + rest.defaults),
            f"{grpc_.rps * MULTI_ROWS:,.0f}" if grpc_.rps else "-",
            f"{grpc_.p99_ms:.1f}" if grpc_.rps else "-",
            str(grpc_.errors + grpc_.defaults),
            ratio,
        ])  # fmt: skip
    _print(head, table)


def print_tables(
    rows: list[tuple[str, str, int, Result, Result]],
    direct: dict[tuple[str, int], Result],
    levels: list[int],
) -> None:
    head = ["model", "conc", "batching", "REST req/s", "p50 ms", "p99 ms", "dflt",
            "batch", "gRPC req/s", "p50 ms", "p99 ms", "dflt", "gRPC/REST"]  # fmt: skip
    order = {name: i for i, name in enumerate(dict.fromkeys(r[0] for r in rows))}
    modes = {mode: i for i, mode in enumerate(MODES)}
    table = []
    for name, mode, c, rest, grpc_ in sorted(
        rows, key=lambda r: (order[r[0]], r[2], modes.get(r[1], 99))
    ):
        ratio = f"{grpc_.rps / rest.rps:.2f}" if rest.rps and grpc_.rps else "-"
        batch = f"{rest.batch:.1f}" if rest.batch else "-"
        table.append([name, str(c), mode, *rest.cells(), batch, *grpc_.cells(), ratio])
    print()
    print("Through the frontend (single-row requests; cache off; SLO 100 ms; dflt = answers")
    print("that were the default output or errors; batch = mean rows per batch, REST):")
    _print(head, table)
    if not direct:
        return
    print()
    print("Calling the container directly (gRPC raw, ghz) against the frontend (adaptive);")
    print("at concurrency 1 the difference of the p50s is what the frontend adds:")
    head = ["model", "conc", "direct req/s", "p50 ms", "p99 ms",
            "REST p50", "added", "gRPC p50", "added"]  # fmt: skip
    table = []
    for (name, c), result in direct.items():
        via = next(((r, g) for n, m, cc, r, g in rows if (n, m, cc) == (name, "adaptive", c)), None)
        cells = [name, str(c), *result.cells()[:3]]
        for through in via or (Result(), Result()):
            if through.rps and result.rps:
                cells += [f"{through.p50_ms:.1f}", f"{through.p50_ms - result.p50_ms:+.1f} ms"]
            else:
                cells += ["-", "-"]
        table.append(cells)
    _print(head, table)


def _print(head: list[str], table: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths], *table]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
