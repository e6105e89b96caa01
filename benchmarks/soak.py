"""Soak: does the frontend's memory stay flat once its cache is full?

One digits logistic-regression container behind one frontend process whose app
caches into a small LRU (``--cache-bytes``, 2 MiB by default, so it fills within
seconds). First a short closed-loop ``wrk`` run (unique rows, concurrency 32)
finds the capacity in requests/s, unless ``--rate`` gives it; then ``wrk``
drives about 70% of it for ``--seconds`` (600 by default): connections that
each pause 20 ms between an answer and the next request (wrk's ``delay()``);
9 rows in 10 are unique (a counter in the first pixel) and 1 in 10 is one of 64
fixed digits, so the cache fills and keeps evicting. The frontend's RSS is
sampled every ``--every`` seconds.

The frontend also remembers answered queries for feedback by id, in a store
bounded in bytes per app (``--feedback-bytes``, 4 MiB here, so it too fills
within the first minute rather than after the 64 MiB default). The benchmark
prints the RSS when both the cache and the feedback store first report
themselves full (95% of their bounds), at the end, and the growth between the
two (the target: under 10%), with the request rate reached and the answers that
were defaults or errors; and, for comparison, the RSS a quarter into the run
and the growth from there.

    python benchmarks/soak.py [--seconds 600] [--rate 1500] [--cache-bytes 2097152]
                              [--feedback-bytes 4194304]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
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
PAUSE_MS = 20
"""Each connection's pause between an answer and its next request."""
LUA = """
local tails = {{{tails}}}
local n = 0
local pause = {pause}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local first = "0"
  if n % 10 ~= 0 then first = "0.{cell}" .. string.format("%010d", n) end
  return wrk.format(nil, nil, nil, '{{"input":[' .. first .. tails[n % #tails + 1] .. '}}')
end
delay = function()
  return pause
end
"""


def script(directory: Path, cell: int, pause_ms: int) -> Path:
    tails = ",".join('"' + "".join(f",{v:g}" for v in row[1:]) + ']"' for row in digits_batch(64))
    path = directory / f"soak-{cell}.lua"
    path.write_text(LUA.format(tails=tails, cell=f"{cell:02d}", pause=pause_ms))
    return path


def wrk(url: str, lua: Path, connections: int, seconds: int) -> subprocess.Popen[str]:
    command = [shutil.which("wrk") or "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    command += ["--timeout", "10s", "-s", str(lua), url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def rate_of(out: str) -> float:
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(found.group(1)) if found else 0.0


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600, help="length of the soak")
    parser.add_argument("--rate", type=float, default=None, help="capacity in requests/s")
    parser.add_argument("--cache-bytes", type=int, default=2 * 1024 * 1024)
    parser.add_argument("--feedback-bytes", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found (Debian/Ubuntu: apt-get install wrk)")
        return 1
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
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
            cache = {"enabled": True, "max_bytes": args.cache_bytes}
            app = route(APP, {APP: [server.address]}, latency_slo_ms=50, cache=cache)
            routes = write_routes(directory / "routes.yaml", app)
            with FrontendProcess(
                routes, args=["--seed", "0", "--feedback-max-bytes", str(args.feedback_bytes)]
            ).wait_ready() as frontend:
                soak(frontend, directory, args)
        finally:
            server.stop()
    return 0


def soak(frontend: FrontendProcess, directory: Path, args: argparse.Namespace) -> None:
    url = f"{frontend.url}/{APP}/predict"
    capacity = args.rate
    if capacity is None:
        probe = wrk(url, script(directory, 1, 0), 32, 5)
        capacity = rate_of(probe.communicate()[0])
        print(f"capacity (closed loop, 32 connections, 5 s): {capacity:,.0f} requests/s")
    connections = max(1, round(0.7 * capacity * (PAUSE_MS + 2) / 1000))  # ~2 ms per answer
    pid = frontend.process.pid
    text = frontend.metrics()
    before = (
        metric(text, "clipper_frontend_default_outputs_total", app=APP),
        metric(text, "clipper_frontend_errors_total"),
    )
    load = wrk(url, script(directory, 2, PAUSE_MS), connections, args.seconds)
    started = time.monotonic()
    full_at: tuple[float, float] | None = None
    samples = []
    while load.poll() is None:
        time.sleep(args.every)
        elapsed, rss = time.monotonic() - started, rss_mib(pid)
        samples.append((elapsed, rss))
        text = frontend.metrics()
        cache_bytes = metric(text, "clipper_frontend_cache_bytes", app=APP)
        kept = metric(text, "clipper_frontend_feedback_store_bytes", app=APP)
        full = cache_bytes >= 0.95 * args.cache_bytes and kept >= 0.95 * args.feedback_bytes
        if full_at is None and full:
            full_at = (elapsed, rss)
            print(f"cache and feedback store full after {elapsed:.0f} s: RSS {rss:.1f} MiB")
        elif len(samples) % 12 == 0:
            print(f"  {elapsed:.0f} s: RSS {rss:.1f} MiB", flush=True)
    out = load.communicate()[0]
    end = samples[-1] if samples else (0.0, rss_mib(pid))
    text = frontend.metrics()
    defaults = metric(text, "clipper_frontend_default_outputs_total", app=APP) - before[0]
    errors = metric(text, "clipper_frontend_errors_total") - before[1]
    print(f"\n{args.seconds} s at {rate_of(out):,.0f} requests/s (target 70% of {capacity:,.0f})")
    print(f"defaults {defaults:,.0f}, errors {errors:,.0f}")
    if full_at is None:
        print(f"the cache and feedback store never both filled; RSS at the end {end[1]:.1f} MiB")
        return
    growth = (end[1] - full_at[1]) / full_at[1] * 100
    quarter = next((s for s in samples if s[0] >= args.seconds / 4), end)
    steady = (end[1] - quarter[1]) / quarter[1] * 100
    print(f"RSS when the cache and store were full ({full_at[0]:.0f} s): {full_at[1]:.1f} MiB")
    print(f"RSS a quarter into the run ({quarter[0]:.0f} s): {quarter[1]:.1f} MiB")
    print(f"RSS at the end ({end[0]:.0f} s): {end[1]:.1f} MiB")
    print(f"growth from both full: {growth:+.1f}%; from a quarter in: {steady:+.1f}%")
    print(f"(peak {max(r for _, r in samples):.1f} MiB)")


if __name__ == "__main__":
    sys.exit(main())
