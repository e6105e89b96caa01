"""Frontend workers and APIs side by side: Clipper REST, OIP REST and OIP gRPC,
each through a frontend of 1 worker and one of 2 (``--workers 2``).

One digits logistic-regression container (adaptive batching, cache off, SLO
100 ms) behind two frontends that run at the same time, one with 1 worker and
one with 2; single-row requests at concurrency 64 (``--concurrency``):

* Clipper REST: ``wrk`` posting ``{"input": [64 pixels]}`` to ``/digits/predict``;
* OIP REST: ``wrk`` posting OIP JSON (``{"inputs": [{"name", "datatype": "FP64",
  "shape": [1, 64], "data": [...]}]}``) to ``/v2/models/digits/infer``;
* OIP gRPC: ``ghz`` sending ``ModelInfer`` with a raw tensor over 8 connections
  (``--grpc-connections``: one connection would always land on one worker, since
  SO_REUSEPORT spreads connections, not calls);
* OIP gRPC from h2load (``grpc_h2load``): the same ``ModelInfer`` call, framed as
  gRPC (``application/grpc``, a length-prefixed message) and sent by ``h2load``,
  nghttp2's HTTP/2 load generator, 8 connections x 8 streams. Why a second gRPC
  client: ``ghz`` (Go, general-purpose: it builds each message from the .proto at
  run time) costs 4-7 times the CPU per call that ``wrk`` costs per REST request,
  and here the client shares the frontend's two cores, so a gRPC cell measured
  with ``ghz`` also measures ``ghz``. ``h2load`` is C and event-driven, as ``wrk``
  is: REST against ``grpc_h2load`` is the like-for-like pair. ``h2load`` does not
  read gRPC's status (it is in the trailers), so this cell's req/s, errors and p99
  come from the frontend's counters, as the streamed cell's do;
* OIP gRPC streamed: ``ghz`` sending the same request on ``ModelStreamInfer``
  streams, one per connection (8), each of ``--stream-messages`` (200) requests
  sent as fast as the frontend reads them; the frontends run with
  ``--grpc-stream-max-inflight`` concurrency / connections (8), so 64 requests
  are in flight as with the other APIs. ghz counts streams, not requests, so this
  cell's req/s, errors and p99 come from the frontend's own counters (requests
  answered on streams, their errors, and the p99 of its latency histogram: the
  bucket's upper bound, from the read off the stream to the answer; the other
  cells' p99 is the client's).

Each cell (API x workers) runs ``--rounds`` times for ``--seconds`` each, the
cells interleaved and their order reversed every other round, so a change in the
machine's load (it may be shared) reaches every cell alike; the tables give the
median req/s and, per pair of cells, the median of the rounds' ratios. ``dflt`` counts
default answers and errors, so an empty answer cannot pass for throughput.

``client us/req`` is the load generator's CPU per request (ghz or wrk, from
``RUSAGE_CHILDREN``), to check it is not what limits a cell.

``--grpc-server python`` measures the frontends with gRPC served by ``grpc.aio``
instead of the native front (``clipper-grpc-front``), for the comparison.

Tools as in ``benchmarks/frontend.py``: ``wrk`` (``apt-get install wrk``) and
``ghz`` (in ``~/.cache/clipper/bin`` or on the PATH); ``h2load``
(``apt-get install nghttp2-client``) for ``grpc_h2load``.

    python benchmarks/workers.py [--seconds 3] [--rounds 3] [--concurrency 64]
        [--apis clipper,oip_rest,grpc,grpc_h2load,oip_grpc_stream]
        [--grpc-server native|python]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks.frontend's tools
from benchmarks.frontend import PROTO, Result, measure, request_file, tool, wrk

APP = "digits"
APIS = ("clipper", "oip_rest", "grpc", "grpc_h2load", "oip_grpc_stream")
INFER = "inference.GRPCInferenceService/ModelInfer"
STREAM = "inference.GRPCInferenceService/ModelStreamInfer"
WORKERS = (1, 2)


def ghz(address: str, request: Path, concurrency: int, seconds: float, connections: int) -> Result:
    command = [
        tool("ghz") or "ghz", "--insecure", "--proto", str(PROTO),
        "--call", INFER, "-B", str(request),
        "-c", str(concurrency), "--connections", str(connections),
        "-z", f"{max(1, round(seconds))}s", "--format", "json", address,
    ]  # fmt: skip
    report = json.loads(subprocess.run(command, capture_output=True, text=True).stdout)
    latencies = {d["percentage"]: d["latency"] / 1e6 for d in report["latencyDistribution"] or []}
    codes = report.get("statusCodeDistribution") or {}
    errors = sum(n for code, n in codes.items() if code not in ("OK", "Unavailable", "Canceled"))
    return Result(
        codes.get("OK", 0) / seconds, latencies.get(50, 0.0), latencies.get(99, 0.0), errors
    )


def ghz_stream(
    frontend: FrontendProcess,
    request: Path,
    seconds: float,
    connections: int,
    messages: int,
) -> Result:
    """One ModelStreamInfer stream per connection, ``messages`` requests each, again
    and again for ``seconds``; counted by the frontend (see the module docstring)."""
    command = [
        tool("ghz") or "ghz", "--insecure", "--proto", str(PROTO), "--call", STREAM,
        "-B", str(request), "-c", str(connections), "--connections", str(connections),
        "--stream-call-count", str(messages), "-z", f"{max(1, round(seconds))}s",
        "--format", "json", frontend.grpc_address,
    ]  # fmt: skip
    before = frontend.metrics()
    report = json.loads(subprocess.run(command, capture_output=True, text=True).stdout)
    after = frontend.metrics()
    codes = report.get("statusCodeDistribution") or {}
    broken = sum(n for code, n in codes.items() if code not in ("OK", "Unavailable", "Canceled"))
    return counted(before, after, "oip_grpc_stream", seconds, broken)


def h2load(
    frontend: FrontendProcess, body: Path, concurrency: int, seconds: float, connections: int
) -> Result:
    """Unary ModelInfer calls from ``h2load``, ``concurrency`` at once over
    ``connections`` connections; counted by the frontend (see the module docstring)."""
    command = [
        "h2load", "-D", str(max(1, round(seconds))), "-c", str(connections),
        "-m", str(max(1, concurrency // connections)), "-t", "1", "-d", str(body),
        "-H", "content-type: application/grpc", "-H", "te: trailers",
        f"http://{frontend.grpc_address}/{INFER}",
    ]  # fmt: skip
    before = frontend.metrics()
    output = subprocess.run(command, capture_output=True, text=True).stdout
    after = frontend.metrics()
    failed = re.search(r"(\d+) failed, (\d+) errored", output)
    broken = int(failed.group(1)) + int(failed.group(2)) if failed else 0
    return counted(before, after, "oip_grpc", seconds, broken)


def counted(before: str, after: str, api: str, seconds: float, broken: int) -> Result:
    """Req/s, p50, p99 and errors of ``api`` from the frontend's counters between two
    scrapes, plus ``broken`` calls the client saw fail."""

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    answered = delta(f"{LATENCY}_count", app=APP, api=api)
    errors = delta("clipper_frontend_errors_total", api=api)
    p50, p99 = (bucket_quantile(before, after, api, q) for q in (0.5, 0.99))
    return Result(answered / seconds, p50, p99, int(errors) + broken)


def grpc_body(directory: Path, request: Path) -> Path:
    """``request`` (a serialized ModelInferRequest) as a gRPC message: uncompressed,
    length-prefixed."""
    message = request.read_bytes()
    body = directory / "grpc-body.bin"
    body.write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)
    return body


LATENCY = "clipper_frontend_request_duration_seconds"


def bucket_quantile(before: str, after: str, api: str, q: float) -> float:
    """The upper bound (ms) of the latency bucket holding quantile ``q`` of the
    requests of ``api`` answered between the two scrapes (summed over workers)."""
    labels = {"app": APP, "api": api}
    bounds = sorted(set(re.findall(rf'{LATENCY}_bucket{{[^}}]*le="([^"]+)"', after)), key=float)
    counts = [
        metric(after, f"{LATENCY}_bucket", le=le, **labels)
        - metric(before, f"{LATENCY}_bucket", le=le, **labels)
        for le in bounds
    ]
    if not counts or counts[-1] <= 0:
        return 0.0
    for le, count in zip(bounds, counts, strict=True):
        if count >= q * counts[-1]:
            return float(le) * 1000
    return float("inf")


def client_cpu_seconds() -> float:
    """CPU time of the finished children: the load generators (the frontends and the
    model server are still running, so they do not count)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` and its children (the workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def bodies(api: str) -> list[str]:
    pixels = digits_batch(64)
    if api == "clipper":
        return [json.dumps({"input": row.tolist()}) for row in pixels]
    tensor = {"name": "input", "datatype": "FP64", "shape": [1, 64]}
    return [json.dumps({"inputs": [{**tensor, "data": row.tolist()}]}) for row in pixels]


def path(api: str) -> str:
    return f"/{APP}/predict" if api == "clipper" else f"/v2/models/{APP}/infer"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per cell")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--grpc-connections", type=int, default=8)
    parser.add_argument(
        "--stream-messages", type=int, default=200, help="requests per ModelStreamInfer stream"
    )
    parser.add_argument("--apis", default=",".join(APIS))
    parser.add_argument("--grpc-server", choices=("native", "python"), default="native")
    args = parser.parse_args()
    apis = args.apis.split(",")
    if tool("wrk") is None or tool("ghz") is None:
        print("needs wrk and ghz (see benchmarks/frontend.py)")
        return 1
    if "grpc_h2load" in apis and tool("h2load") is None:
        print("needs h2load for grpc_h2load (apt-get install nghttp2-client)")
        return 1
    print(
        f"{os.cpu_count()} CPUs, {args.seconds:g} s per run, {args.rounds} rounds, "
        f"concurrency {args.concurrency}; gRPC served by {args.grpc_server}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    started = time.monotonic()
    results: dict[tuple[str, int], list[Result]] = {(a, w): [] for a in apis for w in WORKERS}
    cpu_us: dict[tuple[str, int], list[float]] = {key: [] for key in results}
    client_us: dict[tuple[str, int], list[float]] = {key: [] for key in results}
    per_stream = max(1, args.concurrency // args.grpc_connections)
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
            app = route(
                APP,
                {APP: [server.address]},
                latency_slo_ms=100,
                default_output=-1,
                cache={"enabled": False},
                batching={APP: {"adaptive": True, "max_batch_size": 256}},
            )
            routes = write_routes(directory / "routes.yaml", app)
            grpc_request = request_file(directory, APP, digits_batch(64))
            grpc_message = grpc_body(directory, grpc_request)
            flags = ["--seed", "0", "--grpc-stream-max-inflight", str(per_stream)]
            flags += ["--grpc-server", args.grpc_server]
            frontends = {
                w: FrontendProcess(routes, [*flags, "--workers", str(w)]).wait_ready()
                for w in WORKERS
            }
            try:
                time.sleep(3)  # the 2-worker frontend's second worker is up too
                cells = [(a, w) for a in apis for w in WORKERS]
                for round_ in range(args.rounds):
                    for api, w in cells if round_ % 2 == 0 else reversed(cells):
                        frontend = frontends[w]
                        if api == "grpc":
                            run = (ghz, frontend.grpc_address, grpc_request)
                            extra = (args.concurrency, args.seconds, args.grpc_connections)
                        elif api == "grpc_h2load":
                            run = (h2load, frontend, grpc_message)
                            extra = (args.concurrency, args.seconds, args.grpc_connections)
                        elif api == "oip_grpc_stream":
                            run = (ghz_stream, frontend, grpc_request)
                            extra = (args.seconds, args.grpc_connections, args.stream_messages)
                        else:
                            run = (wrk, f"{frontend.url}{path(api)}", bodies(api))
                            extra = (args.concurrency, args.seconds)
                        cpu = tree_cpu_seconds(frontend.process.pid)
                        client = client_cpu_seconds()
                        result = measure(frontend, APP, *run, *extra)
                        spent = tree_cpu_seconds(frontend.process.pid) - cpu
                        client = client_cpu_seconds() - client
                        answered = result.rps * args.seconds
                        cpu_us[(api, w)].append(spent * 1e6 / answered if answered else 0.0)
                        client_us[(api, w)].append(client * 1e6 / answered if answered else 0.0)
                        results[(api, w)].append(result)
            finally:
                for frontend in frontends.values():
                    frontend.stop()
        finally:
            server.stop()
    report(results, cpu_us, client_us, apis)
    print(f"\n(took {time.monotonic() - started:.0f} s; load average now {os.getloadavg()[0]:.1f})")
    return 0


def median_rps(runs: list[Result]) -> float:
    return statistics.median(r.rps for r in runs) if runs else 0.0


def report(
    results: dict[tuple[str, int], list[Result]],
    cpu_us: dict[tuple[str, int], list[float]],
    client_us: dict[tuple[str, int], list[float]],
    apis: list[str],
) -> None:
    print("\nMedian req/s and its run's p99; the frontend's CPU per request (all its")
    print("processes; the machine's other load moves it less than req/s); dflt+errors:")
    head = ["API", "workers", "req/s", "p99 ms", "CPU us/req", "client us/req", "dflt"]
    head.append("runs (req/s)")
    table = []
    for (api, w), runs in results.items():
        middle = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
        table.append([
            api, str(w), f"{median_rps(runs):,.0f}", f"{middle.p99_ms:.1f}",
            f"{statistics.median(cpu_us[(api, w)]):.0f}",
            f"{statistics.median(client_us[(api, w)]):.0f}",
            str(sum(r.errors + r.defaults for r in runs)),
            " ".join(f"{r.rps:,.0f}" for r in runs),
        ])  # fmt: skip
    _print(head, table)

    def ratio(a: tuple[str, int], b: tuple[str, int]) -> str:
        """The median of the rounds' ratios: each round measures both cells back to
        back, so a change in the machine's load between rounds cancels out."""
        pairs = zip(results.get(a, []), results.get(b, []), strict=True)
        ratios = [top.rps / bottom.rps for top, bottom in pairs if top.rps and bottom.rps]
        return f"{statistics.median(ratios):.2f}" if ratios else "-"

    print("\nMedian of the per-round ratios (each round runs every cell once):")
    rows = [["2 workers / 1 worker", *(ratio((a, 2), (a, 1)) for a in apis)]]
    if "clipper" in apis:
        rows.append(["vs Clipper REST, 1 worker", *(ratio((a, 1), ("clipper", 1)) for a in apis)])
        rows.append(["vs Clipper REST, 2 workers", *(ratio((a, 2), ("clipper", 2)) for a in apis)])
    if "oip_rest" in apis:
        rows.append(["vs OIP REST, 1 worker", *(ratio((a, 1), ("oip_rest", 1)) for a in apis)])
        rows.append(["vs OIP REST, 2 workers", *(ratio((a, 2), ("oip_rest", 2)) for a in apis)])
    _print(["", *apis], rows)


def _print(head: list[str], table: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths], *table]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
