"""Caller latency with Shadow mirroring on and off, measured side by side in one run.

One frontend process serves one model, ``digits``, through three apps that share
its stable version (the digits logistic regression, one container):

* ``off``: the stable version alone -- no mirroring;
* ``on``: the same, with a Shadow candidate that is as fast (a second container
  of the same model): every answered query is mirrored to it;
* ``on-slow``: with a Shadow candidate far slower than the traffic (a python
  model sleeping ``SLOW_ROW_S`` per row): its queue fills, and mirrors past the
  in-flight bound are dropped -- the case where a shadow could hurt if it were
  ever waited for.

``wrk`` posts single-row Clipper requests (64 pixels, rotating through 64
digits) to each app in turn, at each concurrency, for ``--rounds`` rounds
(off, on, on-slow, off, on, ... so drift on a shared machine hits each alike);
the table gives the median over the rounds of req/s, p50 and p99, and p99 as a
ratio to ``off``'s, with the rows mirrored and dropped meanwhile (from
``/metrics``). The cache is off; the latency objective 100 ms.

Tool: ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``). Bounded: ``--seconds``
per cell (default 3; about two minutes in all).

    python benchmarks/shadow_mirroring.py [--seconds 3] [--rounds 3] [--concurrency 1,16]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from clipper.testing.frontend import (
    FrontendProcess,
    metric,
    route,
    start_model_servers,
    write_routes,
)
from clipper.testing.latency import URI, LatencyControl
from clipper.testing.models import digits_batch, train_logistic_regression

SLOW_ROW_S = 0.02
"""The slow candidate's cost per row: at 16 concurrent callers it cannot keep up."""
APPS = ("off", "on", "on-slow")


@dataclass
class Cell:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk(url: str, script: Path, concurrency: int, seconds: int) -> Cell:
    wrk_bin = shutil.which("wrk") or "wrk"
    command = [wrk_bin, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s"]
    out = subprocess.run(
        [*command, str(script), url], capture_output=True, text=True, check=True
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Cell(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(out, "50%"),
        p99_ms=_ms(out, "99%"),
        errors=int(errors.group(1)) if errors else 0,
    )


def _ms(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def bodies_script(directory: Path) -> Path:
    bodies = [json.dumps({"input": row.tolist()}) for row in digits_batch(64)]
    quoted = ",\n".join(f"[==[{body}]==]" for body in bodies)
    script = directory / "bodies.lua"
    script.write_text(
        "local bodies = {" + quoted + "}\nlocal i = 0\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
    )
    return script


def mirror_counts(frontend: FrontendProcess) -> tuple[float, float]:
    text = frontend.metrics()
    return (
        metric(text, "clipper_frontend_shadow_mirrored_rows_total"),
        metric(text, "clipper_frontend_shadow_dropped_rows_total"),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found (apt-get install wrk): nothing measured")
        return 0
    levels = [int(c) for c in args.concurrency.split(",")]
    directory = Path(tempfile.mkdtemp())
    control = LatencyControl(directory / "latency")
    control.set(0.0, SLOW_ROW_S)
    model = train_logistic_regression(directory)
    specs = [
        {"framework": "sklearn", "uri": model, "name": "digits", "args": ["--version", v]}
        for v in ("stable", "twin")
    ]
    slow_args = ["--version", "slow", "--input-datatype", "FP64", "--input-shape=-1,64"]
    specs.append(
        {"framework": "python", "uri": URI, "name": "digits", "args": slow_args, "env": control.env}
    )
    servers = start_model_servers(specs)
    stable, twin, slow = (s.address for s in servers)
    try:
        routes = directory / "routes.yaml"
        write_routes(routes, *(app(name, stable, twin, slow) for name in APPS))
        with FrontendProcess(routes).wait_ready() as frontend:
            script = bodies_script(directory)
            results = run_cells(frontend, script, levels, args.seconds, args.rounds)
    finally:
        for server in servers:
            server.stop()
    print_table(results, levels)
    return 0


def app(name: str, stable: str, twin: str, slow: str) -> dict[str, object]:
    versions: list[dict[str, object]] = [{"version": "stable", "replicas": [stable]}]
    shadow = {"on": ("twin", twin), "on-slow": ("slow", slow)}.get(name)
    if shadow is not None:
        versions.append(
            {"version": shadow[0], "weight": 0, "shadow": True, "replicas": [shadow[1]]}
        )
    return route(name, {"digits": versions}, latency_slo_ms=100, cache={"enabled": False})


Results = dict[tuple[str, int], list[tuple[Cell, float, float]]]


def run_cells(
    frontend: FrontendProcess, script: Path, levels: list[int], seconds: int, rounds: int
) -> Results:
    results: Results = {}
    for _ in range(rounds):
        for c in levels:
            for name in APPS:
                before = mirror_counts(frontend)
                cell = wrk(f"{frontend.url}/{name}/predict", script, c, seconds)
                after = mirror_counts(frontend)
                mirrored, dropped = after[0] - before[0], after[1] - before[1]
                results.setdefault((name, c), []).append((cell, mirrored, dropped))
    return results


def print_table(results: Results, levels: list[int]) -> None:
    head = ["conc", "mirroring", "req/s", "p50 ms", "p99 ms", "p99 / off", "errors",
            "mirrored", "dropped"]  # fmt: skip
    table = []
    for c in levels:
        base = statistics.median(cell.p99_ms for cell, _, _ in results[("off", c)])
        for name in APPS:
            runs = results[(name, c)]
            p99 = statistics.median(cell.p99_ms for cell, _, _ in runs)
            table.append(
                [
                    str(c),
                    name,
                    f"{statistics.median(cell.rps for cell, _, _ in runs):,.0f}",
                    f"{statistics.median(cell.p50_ms for cell, _, _ in runs):.2f}",
                    f"{p99:.2f}",
                    f"{p99 / base:.2f}" if base else "-",
                    str(sum(cell.errors for cell, _, _ in runs)),
                    f"{sum(m for _, m, _ in runs):,.0f}",
                    f"{sum(d for _, _, d in runs):,.0f}",
                ]
            )
    print()
    print("Caller latency with Shadow mirroring off and on (one frontend, single-row REST")
    print("requests, cache off, SLO 100 ms; medians over the rounds; mirrored/dropped: rows,")
    print("summed over the rounds; on-slow: a candidate far slower than the traffic):")
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths], *table]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
