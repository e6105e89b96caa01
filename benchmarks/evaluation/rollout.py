"""Version rollouts under load: what a caller sees while a canary (or shadow) runs.

``clipper run`` (local mode: the same rollout state machine as the operator)
serves one app over a ModelDeployment at v1 while a bounded load loop (threads
posting single rows; every request timed) runs; then ``clipper apply`` changes
the version to v2 with a canary of 10% and 50% steps. The timeline, in windows
of half a second: the caller's p99, errors (non-200 or a default answer), and
each version's share of the rows the frontend sent (from its batch-size
counters per version, read from ``/metrics``).

A Shadow promotion is measured the same way when the API has the strategy
(being built on another branch); until then the result says it was skipped.
"""

from __future__ import annotations

import http.client
import itertools
import json
import tempfile
import threading
import time
import typing
from pathlib import Path
from typing import Any

import numpy as np

from clipper.common.api.modeldeployment import RolloutSpec
from clipper.testing.frontend import metric
from clipper.testing.local import LocalRun, clipper_app, model_deployment, write_manifests
from clipper.testing.models import digits_batch
from clipper.testing.processes import free_port

from .record import Options

IDENTITY = "clipper.testing.functions:identity"
WINDOW_S = 0.5
THREADS = 4


class TimedLoad:
    """``THREADS`` clients posting rows back to back, each request timed; bounded by
    ``max_seconds`` and ``max_requests``."""

    def __init__(self, url: str, app: str, max_seconds: float, max_requests: int = 200_000):
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.path = f"/{app}/predict"
        self.bodies = [json.dumps({"input": r.tolist()}) for r in digits_batch(16)]
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.samples: list[tuple[float, float, bool]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client) for _ in range(THREADS)]

    def start(self) -> TimedLoad:
        self.t0 = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[tuple[float, float, bool]]:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self.samples

    def _more(self) -> bool:
        over = time.monotonic() - self.t0 > self.max_seconds
        return not (self._stop.is_set() or over or len(self.samples) >= self.max_requests)

    def _client(self) -> None:
        connection = http.client.HTTPConnection(*self.address, timeout=30)
        k = 0
        while self._more():
            k += 1
            started = time.monotonic()
            ok = False
            try:
                body = self.bodies[k % len(self.bodies)]
                connection.request("POST", self.path, body, {"Content-Type": "application/json"})
                answer = connection.getresponse()
                text = answer.read()
                ok = answer.status == 200 and not json.loads(text).get("default")
            except (OSError, http.client.HTTPException, ValueError):
                connection.close()
                connection = http.client.HTTPConnection(*self.address, timeout=30)
            done = time.monotonic()
            with self._lock:
                self.samples.append((started - self.t0, (done - started) * 1000, ok))
        connection.close()


def strategies() -> list[str]:
    annotation = RolloutSpec.model_fields["strategy"].annotation
    return list(typing.get_args(annotation))


def rollout_spec(strategy: str, quick: bool) -> dict[str, Any]:
    pause = 1 if quick else 4
    spec: dict[str, Any] = {"drainSeconds": 1, "progressDeadlineSeconds": 120}
    if strategy == "Canary":
        steps = [{"weight": 10, "pauseSeconds": pause}, {"weight": 50, "pauseSeconds": pause}]
        spec.update(strategy="Canary", steps=steps)
    else:
        spec.update(strategy=strategy)
    return spec


def swap(strategy: str, options: Options) -> dict[str, Any]:
    """One run: v1 under load, apply v2 with ``strategy``, until v2 is stable."""
    rollout = rollout_spec(strategy, options.quick)
    settle = 1.0 if options.quick else 3.0
    with tempfile.TemporaryDirectory(prefix="clipper-eval-rollout-") as tmp:
        folder = Path(tmp)
        service = {"httpPort": free_port(), "grpcPort": free_port()}
        write_manifests(
            folder / "app.yaml",
            clipper_app(
                "echo",
                ["echo"],
                latencySLOMillis=1000,
                cache={"enabled": False},
                frontend={"service": service},
            ),
        )
        manifests = folder / "manifests"
        manifests.mkdir()
        model = folder / "model.yaml"

        def version(name: str) -> None:
            write_manifests(
                model,
                model_deployment("echo", name, "python", IDENTITY, threads=1, rollout=rollout),
            )

        version("v1")
        with LocalRun([folder / "app.yaml", model], folder / "cache") as run:
            run.wait_serving()
            load = TimedLoad(run.url, "echo", max_seconds=150).start()
            shares: list[tuple[float, dict[str, float]]] = []
            events: list[tuple[float, str]] = []
            try:
                _sample(run, load, shares, settle)
                version("v2")
                applied = run.apply(model)
                events.append((time.monotonic() - load.t0, f"apply v2 ({strategy})"))
                if applied.returncode != 0:
                    raise RuntimeError(f"apply failed: {applied.stderr[-500:]}")
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not _stable(run, "v2"):
                    _sample(run, load, shares, WINDOW_S)
                events.append((time.monotonic() - load.t0, "v2 stable"))
                _sample(run, load, shares, settle)
            finally:
                samples = load.stop()
    return {
        "strategy": strategy,
        "rollout": rollout,
        "events": events,
        "timeline": timeline(samples, shares),
    }


def _stable(run: LocalRun, wanted: str) -> bool:
    status = run.status()
    echo = next(d for d in status["deployments"] if d["name"] == "echo")
    traffic = {t["version"]: t["weight"] for t in echo["status"].get("traffic", [])}
    return bool(echo["status"].get("stableVersion") == wanted and traffic == {wanted: 100})


def _sample(
    run: LocalRun, load: TimedLoad, shares: list[tuple[float, dict[str, float]]], seconds: float
) -> None:
    """Rows per version, read every ``WINDOW_S`` for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        text = _metrics(run.url)
        rows = {
            v: metric(text, "clipper_frontend_batch_size_sum", model="echo", version=v)
            for v in ("v1", "v2")
        }
        shares.append((time.monotonic() - load.t0, rows))
        time.sleep(WINDOW_S)


def _metrics(url: str) -> str:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/metrics")
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def timeline(
    samples: list[tuple[float, float, bool]], shares: list[tuple[float, dict[str, float]]]
) -> list[dict[str, Any]]:
    if not samples:
        return []
    t = np.array([s[0] for s in samples])
    latency = np.array([s[1] for s in samples])
    ok = np.array([s[2] for s in samples])
    windows = []
    for start in np.arange(0, t.max(), WINDOW_S):
        inside = (t >= start) & (t < start + WINDOW_S)
        if not inside.any():
            continue
        windows.append(
            {
                "t": float(start),
                "requests": int(inside.sum()),
                "errors": int((~ok[inside]).sum()),
                "p99_ms": float(np.percentile(latency[inside], 99)),
                "share_v2": _share_v2(shares, start),
            }
        )
    return windows


def _share_v2(shares: list[tuple[float, dict[str, float]]], start: float) -> float | None:
    """v2's share of the rows sent between the two samples around ``start``."""
    for (t0, a), (t1, b) in itertools.pairwise(shares):
        if t0 <= start + WINDOW_S / 2 < t1:
            # A retired version's series leaves /metrics: count it as no rows, not -N.
            moved = {v: max(0.0, b[v] - a[v]) for v in a}
            total = sum(moved.values())
            return moved["v2"] / total if total else None
    return None


def run(options: Options) -> dict[str, Any]:
    known = strategies()
    runs = [swap("Canary", options)]
    notes = []
    if "Shadow" in known:
        try:
            runs.append(swap("Shadow", options))
        except (RuntimeError, TimeoutError) as exc:
            notes.append(f"Shadow promotion failed: {exc}")
    else:
        notes.append(
            "Shadow promotion skipped: this build's RolloutSpec has no Shadow strategy "
            f"(strategies: {', '.join(known)}); the harness runs it once the strategy exists."
        )
    return {"runs": runs, "strategies": known, "notes": notes}
