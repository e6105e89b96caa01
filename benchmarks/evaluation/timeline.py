"""What a caller sees during a rollout: a timed load, and its per-window timeline.

A rollout is judged by its callers, so the load is theirs: ``THREADS`` clients
posting one row at a time to ``/{app}/predict`` back to back, every request
timed, bounded by seconds and by count. A client that knows the true label of
its rows (a Shadow rollout is judged on labels) sends it by query id to
``/{app}/feedback`` right after each answer, as ``examples/digits/client.py
feedback`` does; that request is counted, not timed, since it is not the one a
caller waits on.

The frontend's side comes from ``/metrics``, read every ``WINDOW_S``: the
queries each version answered (``clipper_frontend_version_requests_total``:
queries a version answered to a caller, never the rows mirrored to a shadow, so
one counter serves both strategies) and the rows mirrored to, or dropped for, a
Shadow candidate. ``timeline`` cuts both into windows; ``phases`` gives the
caller's p99 before, during and after a rollout from the raw requests, not
from the windows' p99s.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from clipper.testing.frontend import metric

WINDOW_S = 0.5
THREADS = 4
Counters = dict[str, float]
"""One read of the frontend's counters: ``v1``, ``v2`` (queries answered),
``mirrored`` and ``dropped`` (rows for the Shadow candidate)."""


class TimedLoad:
    """``THREADS`` clients posting ``rows`` back to back, each request timed, and the
    true label of each answered query when ``labels`` is given; bounded by
    ``max_seconds`` and ``max_requests``."""

    def __init__(
        self,
        url: str,
        app: str,
        rows: np.ndarray,
        labels: Sequence[int] | None = None,
        max_seconds: float = 150.0,
        max_requests: int = 200_000,
    ) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.app = app
        self.bodies = [json.dumps({"input": r.tolist()}) for r in rows]
        self.labels = None if labels is None else [int(x) for x in labels]
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.samples: list[tuple[float, float, bool]] = []
        """(sent at, milliseconds, a prediction) per request."""
        self.labelled: list[tuple[float, bool]] = []
        """(sent at, accepted) per label sent."""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(THREADS)]

    def start(self) -> TimedLoad:
        self.t0, self.wall0 = time.monotonic(), time.time()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[tuple[float, float, bool]]:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self.samples

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _more(self) -> bool:
        over = self.now() > self.max_seconds
        return not (self._stop.is_set() or over or len(self.samples) >= self.max_requests)

    def _client(self, index: int) -> None:
        connection = http.client.HTTPConnection(*self.address, timeout=30)
        k = index * len(self.bodies) // THREADS  # each client starts elsewhere in the rows
        while self._more():
            k = (k + 1) % len(self.bodies)
            started = time.monotonic()
            answer = self._post(connection, "predict", self.bodies[k])
            done = time.monotonic()
            ok = answer is not None and not answer.get("default")
            with self._lock:
                self.samples.append((started - self.t0, (done - started) * 1000, ok))
            if ok and self.labels is not None and answer is not None:
                body = json.dumps({"query_id": answer["query_id"], "label": self.labels[k]})
                accepted = self._post(connection, "feedback", body) is not None
                with self._lock:
                    self.labelled.append((done - self.t0, accepted))
        connection.close()

    def _post(
        self, connection: http.client.HTTPConnection, route: str, body: str
    ) -> dict[str, Any] | None:
        """The answer's JSON when it is a 200, else None. A broken connection is
        closed; ``http.client`` opens a fresh one for the next request."""
        try:
            connection.request(
                "POST", f"/{self.app}/{route}", body, {"Content-Type": "application/json"}
            )
            answer = connection.getresponse()
            text = answer.read()
            loaded: dict[str, Any] = json.loads(text)
            return loaded if answer.status == 200 else None
        except (OSError, http.client.HTTPException, ValueError):
            connection.close()
            return None


def read_counters(url: str, app: str, model: str) -> Counters:
    """The frontend's counters that the timeline follows, from one ``/metrics`` read."""
    text = metrics_text(url)
    counters = {
        v: metric(text, "clipper_frontend_version_requests_total", app=app, model=model, version=v)
        for v in ("v1", "v2")
    }
    shadow = {"app": app, "model": model, "candidate": "v2"}
    counters["mirrored"] = metric(text, "clipper_frontend_shadow_mirrored_rows_total", **shadow)
    counters["dropped"] = metric(text, "clipper_frontend_shadow_dropped_rows_total", **shadow)
    return counters


def metrics_text(url: str) -> str:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/metrics")
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def timeline(
    samples: list[tuple[float, float, bool]],
    reads: list[tuple[float, Counters]],
    labelled: list[tuple[float, bool]] | None = None,
) -> list[dict[str, Any]]:
    """Per ``WINDOW_S``: requests, errors, p99, v2's share of the answered queries,
    rows mirrored to and dropped for the candidate, and labels sent."""
    if not samples:
        return []
    t = np.array([s[0] for s in samples])
    latency = np.array([s[1] for s in samples])
    ok = np.array([s[2] for s in samples])
    sent = np.array([s[0] for s in labelled or []])
    windows = []
    for start in np.arange(0, t.max(), WINDOW_S):
        inside = (t >= start) & (t < start + WINDOW_S)
        if not inside.any():
            continue
        moved = _moved(reads, start)
        answered = moved["v1"] + moved["v2"] if moved else 0.0
        windows.append(
            {
                "t": float(start),
                "requests": int(inside.sum()),
                "errors": int((~ok[inside]).sum()),
                "p99_ms": float(np.percentile(latency[inside], 99)),
                "share_v2": moved["v2"] / answered if moved and answered else None,
                "mirrored": moved["mirrored"] if moved else None,
                "dropped": moved["dropped"] if moved else None,
                "labels": int(((sent >= start) & (sent < start + WINDOW_S)).sum()),
            }
        )
    return windows


def _moved(reads: list[tuple[float, Counters]], start: float) -> Counters | None:
    """How much each counter grew between the two reads around ``start``'s middle."""
    for (t0, a), (t1, b) in itertools.pairwise(reads):
        if t0 <= start + WINDOW_S / 2 < t1:
            # A retired version's series leaves /metrics: count it as nothing, not -N.
            return {k: max(0.0, b[k] - a[k]) for k in a}
    return None


def grown(reads: list[tuple[float, Counters]], since: float, until: float) -> Counters:
    """How much each counter grew from the last read at or before ``since`` to the
    last read at or before ``until`` (so nothing counted after ``until`` is in it)."""
    before = [c for t, c in reads if t <= since] or [c for _, c in reads[:1]]
    upto = [c for t, c in reads if t <= until]
    if not before or not upto:
        return {}
    return {k: max(0.0, upto[-1][k] - before[-1][k]) for k in before[-1]}


def phases(
    samples: list[tuple[float, float, bool]], spans: dict[str, tuple[float, float]]
) -> dict[str, dict[str, Any]]:
    """The caller's requests, errors and p99 in each named span of seconds (``before``
    the apply, ``during`` the rollout, ``after`` it, ...)."""
    out = {}
    for name, (lo, hi) in spans.items():
        inside = [(ms, ok) for t, ms, ok in samples if lo <= t < hi]
        out[name] = {
            "requests": len(inside),
            "errors": sum(1 for _, ok in inside if not ok),
            "p99_ms": float(np.percentile([ms for ms, _ in inside], 99)) if inside else None,
        }
    return out
