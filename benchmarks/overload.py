"""Overload: does the cache cost more than it saves when nothing repeats?

One digits logistic-regression container (one replica, one thread) behind one
frontend process (SLO 50 ms), loaded by ``wrk`` at concurrency 16, 64 and 256
with requests of 1 and 16 rows, once with the app's cache on (the default) and
once with it off. Every row of every request is unique (a counter is written
into the first pixel, which is 0 in every digit), so the cache can only cost:
this is the worst case for it, and the case the issue found collapsing.

Per cell: model-answered rows/s (rows of 2xx answers that were not the default
output), defaults, 429s (admission control and full queues), p99 (wrk, over
every answer, 429s included), and the ratio of model-answered rows/s with the
cache on to the same with it off. Both frontends run side by side and each cell
is measured with the cache on and with it off back to back, twice, in alternating
order (``--repeats``), so a change in the machine's load hits both halves of a
ratio. The target is a ratio of at least 0.8 in every cell. The machine may be
shared: compare the ratio, measured side by side in one run, rather than the
absolute figures; ``med on/off`` is the median of the ratios of the single runs.

``--stream zipf`` sends rows that repeat instead: row ``k`` of ``--zipf-keys``
with probability about 1/k (Zipf, s = 1), the same key space in every cell, and
the table gives the cache's hit ratio (hits and coalesced over lookups) per cell:
what the cache saves where it helps. ``--cache-bytes`` sets its bound (a cache
smaller than the key space shows its admission and eviction at work).

``wrk`` is the load generator, as in ``benchmarks/frontend.py`` (C, one
thread: it builds each body in Lua and costs a fraction of what the frontend
does per request). Debian/Ubuntu: ``apt-get install wrk``.

    python benchmarks/overload.py [--seconds 5] [--concurrency 16,64,256] [--rows 1,16]
        [--repeats 2] [--stream unique|zipf] [--zipf-keys 100000] [--cache-bytes N]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from clipper.testing.frontend import (
    FrontendProcess,
    metric,
    route,
    start_model_servers,
    write_routes,
)
from clipper.testing.models import digits_batch, train_logistic_regression

APP = "digits"
SLO_MS = 50

# Each request's rows: the first pixel (0 in every digit) becomes a counter that
# never repeats within a run (CELL keeps cells apart), the other 63 are a digit's.
# With a Zipf stream it is the row's rank k instead, drawn as floor(KEYS ^ u) for
# a uniform u (P(k) about 1/k), in the same key space for every cell.
NEXT_ROW = {
    "unique": "n = n + 1",
    "zipf": "n = math.floor({keys} ^ math.random())",
}
LUA = """
local rows = {rows}
local tails = {{{tails}}}
local n = 0
math.randomseed({cell})
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local parts = {{}}
  for k = 1, rows do
    {next_row}
    parts[k] = "[0.{prefix}" .. string.format("%010d", n) .. tails[n % #tails + 1]
  end
  local body
  if rows == 1 then
    body = '{{"input":' .. parts[1] .. '}}'
  else
    body = '{{"input_batch":[' .. table.concat(parts, ",") .. ']}}'
  end
  return wrk.format(nil, nil, nil, body)
end
"""


@dataclass
class Cell:
    requests: int = 0
    non_2xx: int = 0
    socket_errors: int = 0
    p99_ms: float = 0.0
    defaults: int = 0
    shed: int = 0
    seconds: float = 1.0
    rows: int = 1
    cpu_s: float = 0.0
    """CPU seconds the frontend process used during the cell."""
    lookups: int = 0
    saved: int = 0
    """Cache lookups, and those answered without an evaluation (hits, coalesced)."""
    ratios: tuple[float, ...] = ()
    """Per run, model-answered rows/s with the cache on over off (filled by sweep)."""

    @property
    def answered_rows_per_s(self) -> float:
        ok_rows = (self.requests - self.non_2xx) * self.rows
        return max(0, ok_rows - self.defaults) / self.seconds

    @property
    def cpu_us_per_row(self) -> float:
        """Frontend CPU per row answered (2xx: predictions and defaults)."""
        ok_rows = (self.requests - self.non_2xx) * self.rows
        return self.cpu_s * 1e6 / ok_rows if ok_rows else 0.0


def wrk_script(
    directory: Path, rows: int, cell: int, stream: str = "unique", keys: int = 0
) -> Path:
    pixels = digits_batch(64)
    tails = ",".join(
        '"' + "".join(f",{v:g}" for v in row[1:]) + ']"' for row in pixels
    )  # each: ",0,5,13,...]"
    path = directory / f"{stream}-{rows}-{cell}.lua"
    prefix = f"{cell:02d}" if stream == "unique" else "00"  # Zipf: one key space
    next_row = NEXT_ROW[stream].format(keys=keys)
    path.write_text(LUA.format(rows=rows, tails=tails, cell=cell, prefix=prefix, next_row=next_row))
    return path


def run_wrk(url: str, script: Path, concurrency: int, seconds: int) -> Cell:
    command = [shutil.which("wrk") or "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s"]
    command += ["--latency", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: (.*)", out)
    cell = Cell(
        requests=int(requests.group(1)) if requests else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        p99_ms=_ms(out, "99%"),
        seconds=float(seconds),
    )
    if socket:
        cell.socket_errors = sum(int(n) for n in re.findall(r"\d+", socket.group(1)))
    return cell


def _ms(out: str, percentile: str) -> float:
    found = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", out)
    if found is None:
        return 0.0
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def counters(frontend: FrontendProcess) -> tuple[float, float, float, float]:
    """Defaults, 429s, cache lookups and lookups saved (hits and coalesced)."""
    text = frontend.metrics()
    defaults = metric(text, "clipper_frontend_default_outputs_total", app=APP)
    shed = metric(text, "clipper_frontend_errors_total", api="clipper", code="429")
    cache = {
        name: metric(text, f"clipper_frontend_cache_{name}_total", app=APP)
        for name in ("hits", "misses", "coalesced")
    }
    saved = cache["hits"] + cache["coalesced"]
    return defaults, shed, saved + cache["misses"], saved


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    frontend: FrontendProcess, script: Path, rows: int, concurrency: int, seconds: int
) -> Cell:
    before, cpu = counters(frontend), cpu_seconds(frontend.process.pid)
    cell = run_wrk(f"{frontend.url}/{APP}/predict", script, concurrency, seconds)
    time.sleep(0.2)  # answers still in flight land in the counters
    after = counters(frontend)
    cell.cpu_s = cpu_seconds(frontend.process.pid) - cpu
    cell.rows = rows
    cell.defaults = int(after[0] - before[0])
    cell.shed = int(after[1] - before[1])
    cell.lookups = int(after[2] - before[2])
    cell.saved = int(after[3] - before[3])
    time.sleep(0.5)  # let the queue drain before the next cell
    return cell


def sweep(
    frontends: dict[str, FrontendProcess],
    directory: Path,
    levels: list[int],
    row_counts: list[int],
    seconds: int,
    repeats: int = 2,
    stream: str = "unique",
    keys: int = 0,
) -> dict[str, dict[tuple[int, int], Cell]]:
    """Each cell with the cache on and with it off, back to back, ``repeats`` times
    with the order reversed each time (on-off, off-on, ...): both frontends run side
    by side, so a change in the machine's load, or whatever the previous run left
    behind in the shared model server, hits both halves of a ratio alike."""
    results: dict[str, dict[tuple[int, int], Cell]] = {mode: {} for mode in frontends}
    cells = itertools.count()
    for rows in row_counts:
        for concurrency in levels:
            order = list(frontends.items())
            key = (rows, concurrency)
            ratios = []
            for repeat in range(repeats):
                rates = {}
                for mode, frontend in order if repeat % 2 == 0 else reversed(order):
                    script = wrk_script(directory, rows, next(cells), stream, keys)
                    result = measure(frontend, script, rows, concurrency, seconds)
                    rates[mode] = result.answered_rows_per_s
                    results[mode][key] = _merged(results[mode].get(key), result)
                    print(f"  {rows} rows, concurrency {concurrency}, cache {mode}: "
                          f"{' '.join(_cells(result))}", flush=True)  # fmt: skip
                if rates.get("off"):
                    ratios.append(rates["on"] / rates["off"])
            results["on"][key].ratios = tuple(ratios)
    return results


def _merged(total: Cell | None, more: Cell) -> Cell:
    """Two runs of one cell as one: counts and seconds added, the worse p99."""
    if total is None:
        return more
    return Cell(
        requests=total.requests + more.requests,
        non_2xx=total.non_2xx + more.non_2xx,
        socket_errors=total.socket_errors + more.socket_errors,
        p99_ms=max(total.p99_ms, more.p99_ms),
        defaults=total.defaults + more.defaults,
        shed=total.shed + more.shed,
        seconds=total.seconds + more.seconds,
        rows=more.rows,
        cpu_s=total.cpu_s + more.cpu_s,
        lookups=total.lookups + more.lookups,
        saved=total.saved + more.saved,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="seconds per cell")
    parser.add_argument("--concurrency", default="16,64,256")
    parser.add_argument("--rows", default="1,16", help="rows per request")
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs per cell and mode, in alternating order"
    )
    parser.add_argument(
        "--frontend-args", default="", help="extra `clipper frontend` flags, e.g. admission bounds"
    )
    parser.add_argument("--stream", choices=sorted(NEXT_ROW), default="unique")
    parser.add_argument("--zipf-keys", type=int, default=100_000, help="key space of --stream zipf")
    parser.add_argument("--cache-bytes", type=int, default=64 << 20, help="the cache's max_bytes")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found (Debian/Ubuntu: apt-get install wrk)")
        return 1
    levels = [int(c) for c in args.concurrency.split(",")]
    row_counts = [int(r) for r in args.rows.split(",")]
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, {args.seconds} s per cell; load average {load:.1f}")
    started = time.monotonic()
    extra = args.frontend_args.split()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        spec = {
            "framework": "sklearn",
            "name": APP,
            "uri": train_logistic_regression(directory),
            "args": ["--threads", "1"],
        }
        (server,) = start_model_servers([spec])
        try:
            with contextlib.ExitStack() as stack:
                frontends = {}
                for mode, enabled in (("on", True), ("off", False)):
                    app = route(
                        APP,
                        {APP: [server.address]},
                        latency_slo_ms=SLO_MS,
                        default_output=-1,
                        cache={"enabled": enabled, "max_bytes": args.cache_bytes},
                    )
                    routes = write_routes(directory / f"routes-{mode}.yaml", app)
                    process = FrontendProcess(routes, args=["--seed", "0", *extra])
                    frontends[mode] = stack.enter_context(process.wait_ready())
                results = sweep(
                    frontends, directory, levels, row_counts, args.seconds, args.repeats,
                    args.stream, args.zipf_keys,
                )  # fmt: skip
        finally:
            server.stop()
    print_table(results, levels, row_counts, args.stream)
    print(f"\n(took {time.monotonic() - started:.0f} s; load average now {os.getloadavg()[0]:.1f})")
    return 0


def print_table(
    results: dict[str, dict[tuple[int, int], Cell]],
    levels: list[int],
    row_counts: list[int],
    stream: str = "unique",
) -> None:
    print()
    rows_are = "Unique rows (no repeats)" if stream == "unique" else "Zipf rows"
    print(f"{rows_are}, one digits replica, SLO {SLO_MS} ms; rows/s = rows a")
    print("model answered (2xx, not the default); err = other errors and socket timeouts;")
    print("us/row = frontend CPU per 2xx row; on/off = model-answered rows/s with the")
    print("cache on / with it off (med: the median of single runs' ratios); cpu on/off =")
    print("the same for us/row; hit % = cache hits and coalesced over lookups (cache on):")
    head = ["rows", "conc", "on rows/s", "dflt", "429", "err", "p99 ms", "us/row",
            "off rows/s", "dflt", "429", "err", "p99 ms", "us/row",
            "on/off", "med on/off", "cpu on/off", "hit %"]  # fmt: skip
    table = []
    for rows in row_counts:
        for c in levels:
            on, off = results["on"][(rows, c)], results["off"][(rows, c)]
            off_rate = off.answered_rows_per_s
            ratio = f"{on.answered_rows_per_s / off_rate:.2f}" if off_rate else "-"
            median = f"{statistics.median(on.ratios):.2f}" if on.ratios else "-"
            off_cpu = off.cpu_us_per_row
            cpu = f"{on.cpu_us_per_row / off_cpu:.2f}" if off_cpu else "-"
            hits = f"{100 * on.saved / on.lookups:.1f}" if on.lookups else "-"
            table.append([str(rows), str(c), *_cells(on), *_cells(off), ratio, median, cpu, hits])
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths], *table]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


def _cells(cell: Cell) -> list[str]:
    return [
        f"{cell.answered_rows_per_s:,.0f}",
        f"{cell.defaults:,}",
        f"{cell.shed:,}",
        f"{max(0, cell.non_2xx - cell.shed) + cell.socket_errors:,}",
        f"{cell.p99_ms:,.0f}",
        f"{cell.cpu_us_per_row:,.0f}",
    ]


if __name__ == "__main__":
    sys.exit(main())
