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

Why paired runs and an A/A comparison: on a shared, busy machine the same cell
moves by tens of percent from one run to the next, so one number per cell shows
nothing. Each round measures three pairs back to back -- ``off`` vs ``off`` (A/A:
the noise floor), ``off`` vs ``on`` and ``off`` vs ``on-slow`` -- each pair's
order alternating from round to round (AB, BA, AB, ...) so that drift hits both
alike, and takes each pair's ratio (B / A, p50 and p99). The first table shows
every run; the second the median ratio over the rounds beside the A/A ratios'
range, and whether the pair's ratios differ from the A/A ratios of the same run
(a two-sided Mann-Whitney U test per percentile, exact, Bonferroni-corrected
over every check of the run): mirroring is *within noise* unless they do. (An
earlier rule -- "the median ratio lies inside the A/A range" -- flags noise about
one check in ten with six rounds, so a run of eight checks nearly always flagged
one, a different one each run.) Beside
latency, the frontend's own CPU time per request (its process tree's, from
``/proc``) shows what mirroring costs the frontend itself, which is what a caller
would pay on a frontend short of CPU.

``wrk`` posts single-row Clipper requests (64 pixels, rotating through 64
digits); the rows mirrored and dropped come from ``/metrics``. The cache is off;
the latency objective 100 ms.

Why ``--pin`` (the default where there are two CPUs or more): in a cluster the
candidate runs in pods of its own, so its model's CPU is not the frontend's; on
one small machine it would be, and what the table showed would be the
candidate's model competing with the frontend for the cores, not what the caller
pays for mirroring. So the candidates' model servers get the last CPU to
themselves, and the frontend, the stable version and ``wrk`` share the others
(the same for every app, so ``off`` leaves that CPU idle). ``--no-pin`` measures
everything on every CPU.

Tool: ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``). Bounded: ``--seconds``
per run (default 3), six runs per round and concurrency, ten rounds (about seven
minutes in all with the defaults; fewer rounds leave the test little power).

    python benchmarks/shadow_mirroring.py [--seconds 3] [--rounds 10] [--concurrency 1,16]
        [--no-pin] [--frontend-arg=--shadow-mirror-wait-ms=50 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import mannwhitneyu

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
PAIRS = (("off", "off"), ("off", "on"), ("off", "on-slow"))
"""(A, B) compared in each round: the first is the A/A noise floor."""
ALPHA = 0.05
"""The family-wise error rate of a run's verdicts (Bonferroni over its checks)."""


@dataclass
class Cell:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def wrk(
    url: str, script: Path, concurrency: int, seconds: int, cpus: set[int] | None = None
) -> Cell:
    wrk_bin = shutil.which("wrk") or "wrk"
    command = [wrk_bin, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s"]
    done = subprocess.run(
        [*command, str(script), url],
        capture_output=True,
        text=True,
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(done.args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        )
    out = done.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Cell(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(out, "50%"),
        p99_ms=_ms(out, "99%"),
        errors=int(errors.group(1)) if errors else 0,
        requests=int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
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


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of process ``pid``, and of its descendants, to ``cpus``."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split():
                pin(int(child), cpus)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` and its descendants so far."""
    total = 0.0
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for tid in os.listdir(f"/proc/{pid}/task"):
            for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split():
                total += cpu_seconds(int(child))
    return total


def layout(pinned: bool) -> tuple[set[int], set[int]] | None:
    """(the frontend's, stable's and wrk's CPUs; the candidates' CPU), or None: all."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pinned or len(cpus) < 2:
        return None
    return set(cpus[:-1]), {cpus[-1]}


def mirror_counts(frontend: FrontendProcess) -> tuple[float, float, float]:
    text = frontend.metrics()
    return (
        metric(text, "clipper_frontend_shadow_mirrored_rows_total"),
        metric(text, "clipper_frontend_shadow_dropped_rows_total"),
        metric(text, "clipper_frontend_shadow_mirror_chunks_total"),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--frontend-arg", action="append", default=[], metavar="FLAG=VALUE",
        help="a flag for the frontend, such as --frontend-arg=--shadow-mirror-wait-ms=50",
    )  # fmt: skip
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
    cpus = layout(args.pin)
    try:
        routes = directory / "routes.yaml"
        write_routes(routes, *(app(name, stable, twin, slow) for name in APPS))
        with FrontendProcess(routes, args.frontend_arg).wait_ready() as frontend:
            if cpus is not None:
                for process in (frontend.process, servers[0].process):
                    pin(process.pid, cpus[0])
                for server in servers[1:]:
                    pin(server.process.pid, cpus[1])
            script = bodies_script(directory)
            pairs = run_cells(frontend, script, levels, args.seconds, args.rounds, cpus)
    finally:
        for server in servers:
            server.stop()
    where = "everything on every CPU"
    if cpus is not None:
        where = (
            f"frontend, stable and wrk on CPUs {sorted(cpus[0])},"
            f" the candidates on CPU {sorted(cpus[1])}"
        )
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {where}")
    print_runs(pairs, levels)
    print_summary(pairs, levels)
    return 0


def app(name: str, stable: str, twin: str, slow: str) -> dict[str, object]:
    versions: list[dict[str, object]] = [{"version": "stable", "replicas": [stable]}]
    shadow = {"on": ("twin", twin), "on-slow": ("slow", slow)}.get(name)
    if shadow is not None:
        versions.append(
            {"version": shadow[0], "weight": 0, "shadow": True, "replicas": [shadow[1]]}
        )
    return route(name, {"digits": versions}, latency_slo_ms=100, cache={"enabled": False})


@dataclass
class Run:
    """One wrk run, with the rows mirrored and dropped while it ran."""

    cell: Cell
    mirrored: float
    dropped: float
    cpu_s: float
    """The frontend's CPU time during the run."""
    chunks: float
    """Chunks the mirrored rows went in."""

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_s / max(1, self.cell.requests)


Pairs = dict[tuple[int, tuple[str, str]], list[tuple[Run, Run]]]
"""(concurrency, (A, B)) -> each round's (A's run, B's run)."""


def run_cells(
    frontend: FrontendProcess,
    script: Path,
    levels: list[int],
    seconds: int,
    rounds: int,
    cpus: tuple[set[int], set[int]] | None,
) -> Pairs:
    pairs: Pairs = {}
    callers = None if cpus is None else cpus[0]
    for r in range(rounds):
        for c in levels:
            for a, b in PAIRS:
                order = (a, b) if r % 2 == 0 else (b, a)
                runs = [one_run(frontend, script, name, c, seconds, callers) for name in order]
                first, second = runs if r % 2 == 0 else runs[::-1]
                pairs.setdefault((c, (a, b)), []).append((first, second))
    return pairs


def one_run(
    frontend: FrontendProcess,
    script: Path,
    name: str,
    c: int,
    seconds: int,
    cpus: set[int] | None,
) -> Run:
    before, cpu = mirror_counts(frontend), cpu_seconds(frontend.process.pid)
    cell = wrk(f"{frontend.url}/{name}/predict", script, c, seconds, cpus)
    cpu = cpu_seconds(frontend.process.pid) - cpu
    after = mirror_counts(frontend)
    return Run(cell, after[0] - before[0], after[1] - before[1], cpu, after[2] - before[2])


def label(pair: tuple[str, str]) -> str:
    return "A/A (off vs off)" if pair[0] == pair[1] else f"{pair[0]} vs {pair[1]}"


def print_runs(pairs: Pairs, levels: list[int]) -> None:
    head = ["conc", "comparison", "round", "order", "A p50", "A p99", "B p50", "B p99",
            "p50 B/A", "p99 B/A", "A cpu ms/req", "B cpu ms/req", "B mirrored",
            "B dropped", "rows/chunk"]  # fmt: skip
    table = []
    for c in levels:
        for pair in PAIRS:
            for r, (a, b) in enumerate(pairs[(c, pair)]):
                table.append(
                    [
                        str(c),
                        label(pair),
                        str(r + 1),
                        "AB" if r % 2 == 0 else "BA",
                        f"{a.cell.p50_ms:.2f}",
                        f"{a.cell.p99_ms:.1f}",
                        f"{b.cell.p50_ms:.2f}",
                        f"{b.cell.p99_ms:.1f}",
                        f"{b.cell.p50_ms / a.cell.p50_ms:.2f}",
                        f"{b.cell.p99_ms / a.cell.p99_ms:.2f}",
                        f"{a.cpu_ms_per_request:.3f}",
                        f"{b.cpu_ms_per_request:.3f}",
                        f"{b.mirrored:,.0f}",
                        f"{b.dropped:,.0f}",
                        f"{b.mirrored / b.chunks:.2f}" if b.chunks else "-",
                    ]
                )
    print()
    print("Every run (ms; B/A: the ratio within the round's pair):")
    print_table(head, table)


def print_summary(pairs: Pairs, levels: list[int]) -> None:
    head = ["conc", "comparison", "median p50 B/A", "p50 B/A range", "p50 p", "median p99 B/A",
            "p99 B/A range", "p99 p", "cpu ms/req B/A", "B req/s", "errors", "verdict"]  # fmt: skip
    table = []
    checks = len(levels) * (len(PAIRS) - 1) * 2
    alpha = ALPHA / checks
    for c in levels:
        floor = [ratios(pairs[(c, PAIRS[0])], q) for q in ("p50_ms", "p99_ms")]
        for pair in PAIRS:
            runs = pairs[(c, pair)]
            p50, p99 = ratios(runs, "p50_ms"), ratios(runs, "p99_ms")
            cpu = [b.cpu_ms_per_request / max(1e-9, a.cpu_ms_per_request) for a, b in runs]
            verdict, p_values = "(the noise floor)", ["", ""]
            if pair != PAIRS[0]:
                tests = [against(m, f) for m, f in zip((p50, p99), floor, strict=True)]
                p_values = [f"{p:.3f}" for _, p in tests]
                verdict = ", ".join(
                    f"{q} {word}" for q, (word, p) in zip(("p50", "p99"), tests, strict=True)
                    if p < alpha
                ) or "within noise"  # fmt: skip
            table.append(
                [
                    str(c),
                    label(pair),
                    f"{statistics.median(p50):.2f}",
                    f"{min(p50):.2f}-{max(p50):.2f}",
                    p_values[0],
                    f"{statistics.median(p99):.2f}",
                    f"{min(p99):.2f}-{max(p99):.2f}",
                    p_values[1],
                    f"{statistics.median(cpu):.2f}",
                    f"{statistics.median(b.cell.rps for _, b in runs):,.0f}",
                    str(sum(a.cell.errors + b.cell.errors for a, b in runs)),
                    verdict,
                ]
            )
    print()
    print("Caller latency with Shadow mirroring off and on (one frontend, single-row REST")
    print("requests, cache off, SLO 100 ms; each pair's ratio B/A per round, its median and")
    print("range over the rounds; p: a two-sided Mann-Whitney U test of the pair's ratios")
    print("against the A/A ratios of the same concurrency; a verdict other than within noise")
    print(f"needs p < {ALPHA} / {checks} checks = {alpha:.4f}):")
    print_table(head, table)


def ratios(runs: list[tuple[Run, Run]], quantile: str) -> list[float]:
    return [getattr(b.cell, quantile) / getattr(a.cell, quantile) for a, b in runs]


def against(measured: list[float], floor: list[float]) -> tuple[str, float]:
    """Whether the ratios ``measured`` differ from the A/A ratios ``floor`` (which way,
    and the p-value of a two-sided Mann-Whitney U test: no assumption about how
    latency ratios are distributed, exact for these few rounds)."""
    p = float(mannwhitneyu(measured, floor, alternative="two-sided", method="exact").pvalue)
    word = (
        "above noise" if statistics.median(measured) > statistics.median(floor) else "below noise"
    )
    return word, p


def print_table(head: list[str], table: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths], *table]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
