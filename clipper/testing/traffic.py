"""Constant prediction traffic that tells a failed request from a default answer.

The cluster suite (e2e/) swaps versions and kills pods while this runs, and must
report two different things: requests that *failed* (an error status, a refused or
reset connection, a timeout: what a client sees as an outage, which a swap must
never cause) and requests answered with the app's *default* output (the frontend
kept its promise to answer by the deadline, but no model did). ``LoadLoop`` in
``clipper.testing.local`` counts both as failures, which is right for local mode's
tests and too coarse here. Counts are kept per *phase* (``Traffic.phase("swap")``
starts one), so one run of load yields a row per step of a scenario.

Bounded in time and count, like every load loop in the tests: ``max_seconds`` and
``max_requests`` end it even if ``stop()`` is never reached.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from clipper.testing.timeouts import scaled

RETRY_PAUSE_S = 0.05
"""A client's pause after a failed request before it sends the next one."""


@dataclass
class Phase:
    """What the clients saw during one phase."""

    name: str
    started: float
    ended: float = 0.0
    requests: int = 0
    answered: int = 0
    """200 with a model's answer."""
    defaults: int = 0
    """200 with ``"default": true``: answered, but by the app's default output."""
    failed: int = 0
    models: Counter[str] = field(default_factory=Counter)
    """Which models answered (the answers' ``models``)."""
    failures: list[str] = field(default_factory=list)
    """The first few failures, for messages and the report."""

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def to_dict(self) -> dict[str, object]:
        return {
            "phase": self.name,
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "answered": self.answered,
            "defaults": self.defaults,
            "failed": self.failed,
            "models": dict(self.models),
            "failure_examples": list(self.failures),
        }


class Traffic:
    """``threads`` clients posting ``{"input": row}`` to ``{url}/{app}/predict``
    back to back on keep-alive connections (reconnecting after an error).

    ``with Traffic(...) as traffic:`` starts it; ``traffic.phase(name)`` closes the
    current phase and opens the next; leaving the block stops every client and
    closes the last phase. ``phases`` holds them all, in order.
    """

    def __init__(
        self,
        url: str,
        app: str,
        rows: Sequence[Sequence[float]],
        threads: int = 4,
        max_requests: int = 100_000,
        max_seconds: float = 300.0,
        first_phase: str = "load",
    ) -> None:
        address = urlsplit(url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port
        self.path = f"/{app}/predict"
        self.bodies = [json.dumps({"input": list(map(float, row))}).encode() for row in rows]
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.phases: list[Phase] = []
        self.requests = 0
        self._first = first_phase
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(threads)
        ]

    # --- control ---

    def __enter__(self) -> Traffic:
        self._started = time.monotonic()
        self.phases.append(Phase(self._first, self._started))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Phase]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=scaled(60))
        with self._lock:
            if not self.phases[-1].ended:
                self.phases[-1].ended = time.monotonic()
        return self.phases

    def phase(self, name: str) -> Phase:
        """Close the current phase and start ``name``; returns the closed one."""
        with self._lock:
            now = time.monotonic()
            closed = self.phases[-1]
            closed.ended = now
            self.phases.append(Phase(name, now))
            return closed

    @property
    def current(self) -> Phase:
        return self.phases[-1]

    def total(self, name: str = "total") -> Phase:
        """Every phase added up."""
        with self._lock:
            return add_up(self.phases, name)

    # --- clients ---

    def _take(self) -> Phase | None:
        with self._lock:
            over = time.monotonic() - self._started > self.max_seconds
            if self._stop.is_set() or over or self.requests >= self.max_requests:
                return None
            self.requests += 1
            return self.phases[-1]

    def _record(self, phase: Phase, status: int, body: bytes | None, error: str = "") -> None:
        answer = json.loads(body) if status == 200 and body is not None else None
        with self._lock:
            phase.requests += 1
            if answer is None:
                phase.failed += 1
                if len(phase.failures) < 5:
                    stamp = time.strftime("%H:%M:%S")
                    what = error or f"HTTP {status}: {(body or b'')[:200]!r}"
                    phase.failures.append(f"{stamp} {what}")
            elif answer.get("default"):
                phase.defaults += 1
            else:
                phase.answered += 1
                phase.models.update(answer.get("models") or [])

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=scaled(30))

    def _client(self, index: int) -> None:
        conn = self._connect()
        sent = 0
        while (phase := self._take()) is not None:
            body = self.bodies[(index + sent) % len(self.bodies)]
            sent += 1
            try:
                conn.request("POST", self.path, body, {"Content-Type": "application/json"})
                answer = conn.getresponse()
                self._record(phase, answer.status, answer.read())
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._record(phase, 0, None, f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = self._connect()
                self._stop.wait(RETRY_PAUSE_S)  # as a client would, not a busy loop
        conn.close()


def add_up(phases: Sequence[Phase], name: str = "total") -> Phase:
    """One phase that holds the counts of ``phases`` (and their first failures)."""
    found = Phase(name, phases[0].started, phases[-1].ended)
    for part in phases:
        found.requests += part.requests
        found.answered += part.answered
        found.defaults += part.defaults
        found.failed += part.failed
        found.models.update(part.models)
        found.failures.extend(part.failures[: max(0, 5 - len(found.failures))])
    return found


def table(phases: Sequence[Phase], title: str = "") -> str:
    """The phases as a fixed-width text table (with a total row when there are several)."""
    rows = [*phases, add_up(phases)] if len(phases) > 1 else [*phases]
    width = max(len("phase"), *(len(p.name) for p in rows))
    lines = [title] if title else []
    lines.append(
        f"{'phase':<{width}}  {'seconds':>7}  {'requests':>8}  {'answered':>8}  "
        f"{'defaults':>8}  {'failed':>6}"
    )
    for p in rows:
        lines.append(
            f"{p.name:<{width}}  {p.seconds:>7.1f}  {p.requests:>8}  {p.answered:>8}  "
            f"{p.defaults:>8}  {p.failed:>6}"
        )
    return "\n".join(lines)
