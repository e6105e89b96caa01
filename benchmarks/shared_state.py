"""Selection state in Redis against in process: throughput, convergence, kill -9.

Three measurements, each printed as a table, every number from this one run:

1. Throughput. One ``clipper frontend`` process serving an exp3 app of two noop
   models (so selection, the query log and learning are what is measured, not a
   model), loaded by ``wrk`` posting single-row predictions at concurrency 64,
   with ``--state-backend memory`` and ``redis`` alternately (``--rounds`` pairs,
   side by side), plus a mix of 48 connections predicting and 16 sending labels
   (feedback by input). The ratio redis / memory is the cost of sharing the state
   (goal: >= 0.9x); its median over the pairs and its range are printed, since a
   shared machine's load moves single runs by 2x.
2. Convergence. Two frontend processes share one Redis; 1,000 labels (three
   digits classifiers of different quality, predict then feedback by query id)
   go to them alternately. The gap is the largest difference between the two
   frontends' selection weights (from their ``/metrics``) right after the last
   label and after one refresh period.
3. ``kill -9``. Two frontends share one Redis (epsilon-greedy, whose Redis state
   counts the labels learned); 16 clients predict on both in turn for
   ``--seconds`` and label each answer through the other frontend 0.3 s later;
   one frontend is killed with SIGKILL halfway. Every acknowledged label must be
   in Redis (``lost labels`` = acknowledged - counted in Redis), and requests
   fail only as counted: connection errors to the killed frontend (predictions
   sent to it, labels for queries answered by the survivor), and 404s for
   queries the killed frontend answered in its last refresh period, before they
   reached the shared query log.

Tools: ``redis-server`` (``make redis``), ``wrk`` (``apt-get install wrk``).

    python benchmarks/shared_state.py [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
import redis as redis_py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from clipper.testing.frontend import (  # noqa: E402
    FrontendProcess,
    metric,
    route,
    start_model_servers,
    write_routes,
)
from clipper.testing.graded_models import GRADES, train_graded  # noqa: E402
from clipper.testing.models import digits  # noqa: E402
from clipper.testing.redis_server import redis_server  # noqa: E402
from frontend import wrk  # noqa: E402  (the REST load generator of benchmarks/frontend.py)

KEYS = (
    "predictions sent",
    "answered",
    "predictions refused",
    "labels sent",
    "labels acked",
    "labels refused",
    "labels 404",
    "labels other",
)
LABEL_AFTER_S = 0.3
"""kill -9 run: a query is labelled (through the other frontend) once this old."""
SHAPE = ["--input-datatype", "FP64", "--input-shape=-1,64", "--threads", "1"]


def frontend(routes: Path, backend: str, url: str, *extra: str) -> FrontendProcess:
    args = ["--state-backend", backend, "--state-url", url, *extra] if backend == "redis" else []
    return FrontendProcess(routes, [*args, "--seed", "1"]).wait_ready()


def throughput(work: Path, url: str, seconds: int, rounds: int) -> None:
    servers = start_model_servers(
        [{"framework": "noop", "name": name, "args": SHAPE} for name in ("a", "b")]
    )
    try:
        routes = work / "noop.yaml"
        models = {s.name: [s.address] for s in servers}
        write_routes(
            routes,
            route("ab", models, selection={"type": "exp3"}, cache={"enabled": False}),
        )
        pixels = digits()[0]
        predict = [f'{{"input": {pixels[i].tolist()}}}' for i in range(64)]
        labelled = [f'{{"input": {pixels[i].tolist()}, "label": 0}}' for i in range(64)]
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(rounds):
            for backend in ("memory", "redis"):
                with frontend(routes, backend, url) as fe:
                    base = f"{fe.url}/ab"
                    wrk(f"{base}/predict", predict, 64, 1)  # warm-up
                    rps = wrk(f"{base}/predict", predict, 64, seconds).rps
                    results.setdefault((backend, "predict"), []).append(rps)
                    mixed = mixed_rps(base, predict, labelled, seconds)
                    results.setdefault((backend, "predict + 1/4 labels"), []).append(mixed)
    finally:
        for server in servers:
            server.stop()
    print(
        f"\n1. Throughput, one frontend, wrk c=64, 2 noop models, exp3: {rounds} rounds of "
        "memory then redis (req/s: median; ratio: median of the rounds' redis/memory, "
        "and its range)"
    )
    print(f"{'load':<22}{'memory':>9}{'redis':>9}{'redis/memory':>14}{'range':>14}")
    for load in ("predict", "predict + 1/4 labels"):
        mem, red = results[("memory", load)], results[("redis", load)]
        ratios = [r / m for m, r in zip(mem, red, strict=True)]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(
            f"{load:<22}{np.median(mem):>9.0f}{np.median(red):>9.0f}"
            f"{np.median(ratios):>13.2f}x{spread:>14}"
        )


def mixed_rps(base: str, predict: list[str], labelled: list[str], seconds: int) -> float:
    """3 connections predicting and 1 sending labels (feedback by input), together."""
    import threading

    out: dict[str, float] = {}

    def run(key: str, path: str, bodies: list[str], c: int) -> None:
        out[key] = wrk(f"{base}/{path}", bodies, c, seconds).rps

    threads = [
        threading.Thread(target=run, args=("p", "predict", predict, 48)),
        threading.Thread(target=run, args=("f", "feedback", labelled, 16)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out["p"] + out["f"]


def weights(fe: FrontendProcess) -> dict[str, float]:
    text = fe.metrics()
    return {
        g: metric(text, "clipper_frontend_selection_weight", app="digits", model=g) for g in GRADES
    }


async def label(http: aiohttp.ClientSession, url: str, pixel: list[float], truth: int) -> bool:
    async with http.post(f"{url}/digits/predict", json={"input": pixel}) as r:
        answer = await r.json()
    body = {"query_id": answer["query_id"], "label": truth}
    async with http.post(f"{url}/digits/feedback", json=body) as r:
        return r.status == 200


def convergence(work: Path, url: str, labels_n: int) -> None:
    (work / "graded").mkdir()
    paths = train_graded(work / "graded")
    specs = [
        {"framework": "sklearn", "uri": paths[g], "name": g, "args": ["--threads", "1"]}
        for g in GRADES
    ]
    servers = start_model_servers(specs)
    try:
        routes = work / "digits.yaml"
        models = {s.name: [s.address] for s in servers}
        write_routes(
            routes, route("digits", models, selection={"type": "exp3"}, latency_slo_ms=5000)
        )
        pixels, truth = digits()
        draws = np.random.default_rng(0).integers(len(truth), size=labels_n)
        with frontend(routes, "redis", url) as a, frontend(routes, "redis", url) as b:

            async def feed() -> int:
                ok = 0
                async with aiohttp.ClientSession() as http:
                    for n, i in enumerate(draws):
                        target = a if n % 2 == 0 else b
                        ok += await label(http, target.url, pixels[i].tolist(), int(truth[i]))
                return ok

            started = time.monotonic()
            ok = asyncio.run(feed())
            took = time.monotonic() - started
            now_a, now_b = weights(a), weights(b)
            time.sleep(0.3)  # three refresh periods
            later_a, later_b = weights(a), weights(b)
    finally:
        for server in servers:
            server.stop()
    print(
        f"\n2. Convergence: {labels_n} labels alternately to two frontends "
        f"({ok} acknowledged, {took:.1f}s)"
    )
    print(f"{'model':<8}{'A now':>9}{'B now':>9}{'A +0.3s':>9}{'B +0.3s':>9}")
    for g in GRADES:
        print(f"{g:<8}{now_a[g]:>9.4f}{now_b[g]:>9.4f}{later_a[g]:>9.4f}{later_b[g]:>9.4f}")
    gap_now = max(abs(now_a[g] - now_b[g]) for g in GRADES)
    gap_later = max(abs(later_a[g] - later_b[g]) for g in GRADES)
    print(
        f"largest weight gap: {gap_now:.2e} right after the last label, {gap_later:.2e} after 0.3 s"
    )


def kill_nine(work: Path, redis_url: str, port: int, seconds: int) -> None:
    servers = start_model_servers(
        [{"framework": "noop", "name": name, "args": SHAPE} for name in ("a", "b")]
    )
    try:
        routes = work / "eg.yaml"
        models = {s.name: [s.address] for s in servers}
        app = route("ab", models, selection={"type": "epsilon_greedy"}, cache={"enabled": False})
        write_routes(routes, app)
        with redis_py.Redis(port=port) as client:
            client.flushall()
        pixels = digits()[0]
        with frontend(routes, "redis", redis_url) as a, frontend(routes, "redis", redis_url) as b:
            counts = asyncio.run(_load([a, b], pixels, seconds, victim=a))
        with redis_py.Redis(port=port) as client:
            learned = 0.0
            for key in client.scan_iter("clipper:sel:ab:*"):
                for field, value in client.hgetall(key).items():
                    if field.decode().endswith("|count"):
                        learned += float(value)
    finally:
        for server in servers:
            server.stop()
    acked = counts["labels acked"]
    print(
        f"\n3. kill -9 of one frontend of two, under load ({seconds}s, 16 clients, "
        "predict + label pairs)"
    )
    for key in KEYS:
        print(f"  {key:<20}{counts[key]:>8}")
    print(
        f"  labels in Redis {learned:>6.0f}   "
        f"lost labels (acknowledged - in Redis): {acked - learned:.0f}"
    )


async def _load(
    fronts: list[FrontendProcess], pixels: np.ndarray, seconds: int, victim: FrontendProcess
) -> dict[str, int]:
    """16 clients: each predicts on the two frontends in turn and labels each answer
    through the *other* frontend once it is ``LABEL_AFTER_S`` old (longer than the
    refresh period, so the query is in the shared log). The victim is killed halfway."""
    counts = dict.fromkeys(KEYS, 0)
    deadline = time.monotonic() + seconds
    kill_at = time.monotonic() + seconds / 2
    killed = False

    async def feedback(http: aiohttp.ClientSession, url: str, query_id: int) -> None:
        body = {"query_id": query_id, "label": [0.0] * 64}
        counts["labels sent"] += 1
        try:
            async with http.post(f"{url}/ab/feedback", json=body) as r:
                key = {200: "labels acked", 404: "labels 404"}.get(r.status, "labels other")
                counts[key] += 1
        except aiohttp.ClientConnectionError:
            counts["labels refused"] += 1

    async def client(n: int, http: aiohttp.ClientSession) -> None:
        nonlocal killed
        waiting: list[tuple[float, int, int]] = []  # (answered at, query id, answered by)
        i = n
        while time.monotonic() < deadline + LABEL_AFTER_S:
            i += 1
            now = time.monotonic()
            try:
                while waiting and now - waiting[0][0] > LABEL_AFTER_S:
                    _, query_id, by = waiting.pop(0)
                    await feedback(http, fronts[1 - by].url, query_id)
                if now < deadline:
                    by = i % 2
                    counts["predictions sent"] += 1
                    row = {"input": pixels[i % 64].tolist()}
                    async with http.post(f"{fronts[by].url}/ab/predict", json=row) as r:
                        answer = await r.json()
                    counts["answered"] += 1
                    waiting.append((time.monotonic(), answer["query_id"], by))
                else:
                    await asyncio.sleep(0.01)
            except aiohttp.ClientConnectionError:
                counts["predictions refused"] += 1
                await asyncio.sleep(0.01)
            if not killed and time.monotonic() > kill_at:
                killed = True
                os.kill(victim.process.pid, signal.SIGKILL)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        await asyncio.gather(*(client(n, http) for n in range(16)))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=int, default=5, help="seconds per throughput run and for kill -9"
    )
    parser.add_argument("--rounds", type=int, default=5, help="memory/redis alternations")
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--only", default="1,2,3")
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("wrk") is None:
        print("needs redis-server (make redis) and wrk (apt-get install wrk)")
        return 1
    print(
        f"host: {os.cpu_count()} CPUs; redis-server, frontends, models and the load "
        "generators share them"
    )
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(binary)) as redis:
        work = Path(tmp)
        if "1" in args.only:
            throughput(work, redis.url, args.seconds, args.rounds)
        if "2" in args.only:
            convergence(work, redis.url, args.labels)
        if "3" in args.only:
            kill_nine(work, redis.url, redis.port, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
