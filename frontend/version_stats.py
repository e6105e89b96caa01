"""Per-version statistics: what a rollout's analysis judges a candidate on.

The frontend is the one place that sees every answer, so it counts, per (app,
model, version): queries, errors (the version failed the query), default answers
by reason, a latency histogram, and the labels and loss that feedback brings.
They are cumulative counters, never reset or windowed here: a controller reads
every frontend of an app (``GET /v1/stats/versions``) and judges a canary step
on the difference since the step began (``clipper.common.rollout.analysis``),
which works the same with one frontend or twenty and survives a controller's
restart. The document carries this process's ``instance`` id and start time, so
a restarted frontend (counters back at zero) is told apart from a quiet one.

Latency is per query and per version: from the query's arrival until that
version's chunk answered, or until the answer was given when the version had
not answered by then (the deadline passed: the query counts more than the
SLO). Buckets are fixed (``LATENCY_BUCKETS_MS``) so that deltas and sums over
frontends stay histograms, and p99 is estimated from them.

Recording costs one pass over the request's groups after its answers are built,
never a task or a lock. The same counters are Prometheus metrics
(``clipper_frontend_version_*``), read at scrape time.

Bounded: at most ``max_entries`` (app, model, version) entries; past it the
least recently created is dropped (a controller sees its counters go down and
counts from zero, as after a restart).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from clipper.common.rollout.analysis import ERROR_REASONS, LATENCY_BUCKETS_MS
from clipper.frontend.queries import SLO_MISSED, Answer, Evaluation, explain
from clipper.frontend.routing.apps import AppRuntime

MAX_ENTRIES = 4096
"""(app, model, version) entries kept; each is a few hundred bytes."""
_BOUNDS_S = tuple(b / 1000 for b in LATENCY_BUCKETS_MS)
Key = tuple[str, str, str]


class VersionCounters:
    """One (app, model, version)'s cumulative counters."""

    __slots__ = (
        "defaults", "errors", "labels", "latency", "latency_sum", "loss_squares", "loss_sum",
        "requests",
    )  # fmt: skip

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.defaults: dict[str, int] = {}
        self.latency = [0] * (len(_BOUNDS_S) + 1)
        self.latency_sum = 0.0
        self.labels = 0
        self.loss_sum = 0.0
        self.loss_squares = 0.0

    def observe(self, seconds: float) -> None:
        self.latency[bisect_left(_BOUNDS_S, seconds)] += 1
        self.latency_sum += seconds

    def default(self, reason: str) -> None:
        self.defaults[reason] = self.defaults.get(reason, 0) + 1

    def loss(self, value: float) -> None:
        self.labels += 1
        self.loss_sum += value
        self.loss_squares += value * value

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "defaults": dict(self.defaults),
            "latency_buckets": list(self.latency),
            "labels": self.labels,
            "loss_sum": self.loss_sum,
            "loss_squares": self.loss_squares,
        }


class VersionStats:
    """Every version's counters on this frontend."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.instance = uuid.uuid4().hex
        self.started_at = time.time()
        self.max_entries = max_entries
        self.evictions = 0
        self._entries: OrderedDict[Key, VersionCounters] = OrderedDict()
        self._slo_ms: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def counters(self, app: str, model: str, version: str) -> VersionCounters:
        key = (app, model, version)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = VersionCounters()
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.evictions += 1
        return entry

    def record(
        self,
        app: AppRuntime,
        evaluation: Evaluation,
        answers: Sequence[Answer],
        answered_at: dict[int, float],
        arrived: float,
    ) -> None:
        """Count the request's queries per version once its answers are built.

        ``answered_at`` maps each chunk future's id to when it completed (``watch``).
        """
        now = asyncio.get_running_loop().time()
        self._slo_ms[app.name] = app.config.latency_slo_ms
        for version, members in evaluation.groups:
            counters = self.counters(app.name, version.model, version.version)
            for i, model in members:
                source = evaluation.sources[i][model]
                error: BaseException | None = None
                at = now
                if isinstance(source, tuple):
                    future = source[0]
                    if future.done() and not future.cancelled():
                        error = future.exception()
                        at = answered_at.get(id(future), now)
                    else:
                        error = SLO_MISSED
                elif isinstance(source, BaseException):
                    error = source
                else:  # a cache hit
                    at = answered_at.get(0, now)
                counters.requests += 1
                if error is not None and explain(error, app)[0] in ERROR_REASONS:
                    counters.errors += 1
                answer = answers[i]
                if answer.default and answer.reason:
                    counters.default(answer.reason)
                counters.observe(max(0.0, at - arrived))

    def record_loss(self, app: str, model: str, version: str, loss: float) -> None:
        self.counters(app, model, version).loss(loss)

    def snapshot(self) -> dict[str, Any]:
        """The ``/v1/stats/versions`` document."""
        return {
            "instance": self.instance,
            "started_at": self.started_at,
            "latency_buckets_ms": list(LATENCY_BUCKETS_MS),
            "entries": len(self._entries),
            "max_entries": self.max_entries,
            "versions": [
                {
                    "app": app,
                    "model": model,
                    "version": version,
                    "slo_ms": self._slo_ms.get(app),
                    **counters.to_json(),
                }
                for (app, model, version), counters in self._entries.items()
            ],
        }

    def items(self) -> Iterable[tuple[Key, VersionCounters]]:
        return list(self._entries.items())


def watch(futures: Iterable[asyncio.Future[Any]]) -> dict[int, float]:
    """When each future completes, by id (filled by done callbacks); id 0: now, for
    answers that were at hand from the start (cache hits)."""
    loop = asyncio.get_running_loop()
    times: dict[int, float] = {0: loop.time()}

    def done(future: asyncio.Future[Any]) -> None:
        times[id(future)] = loop.time()

    for future in futures:
        if future.done():
            times[id(future)] = times[0]
        else:
            future.add_done_callback(done)
    return times


class VersionStatsCollector(Collector):
    """The counters as Prometheus metrics, read at scrape time."""

    def __init__(self, stats: VersionStats) -> None:
        self.stats = stats

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        labels = ["app", "model", "version"]
        prefix = "clipper_frontend_version"
        requests = CounterMetricFamily(f"{prefix}_requests", "Queries per version.", labels=labels)
        errors = CounterMetricFamily(
            f"{prefix}_errors", "Queries the version failed (model error).", labels=labels
        )
        defaults = CounterMetricFamily(
            f"{prefix}_defaults",
            "Default answers to queries routed to the version, by reason.",
            labels=[*labels, "reason"],
        )
        labelled = CounterMetricFamily(
            f"{prefix}_labels", "Labels received for the version's answers.", labels=labels
        )
        loss = CounterMetricFamily(
            f"{prefix}_loss_sum", "Sum of the version's losses on labels.", labels=labels
        )
        latency = HistogramMetricFamily(
            f"{prefix}_latency_seconds",
            "Query latency per version (arrival to the version's answer, or to the deadline).",
            labels=labels,
        )
        for key, c in self.stats.items():
            values = list(key)
            requests.add_metric(values, c.requests)
            errors.add_metric(values, c.errors)
            for reason, n in c.defaults.items():
                defaults.add_metric([*values, reason], n)
            labelled.add_metric(values, c.labels)
            loss.add_metric(values, c.loss_sum)
            latency.add_metric(values, _buckets(c.latency), sum_value=c.latency_sum)
        entries = GaugeMetricFamily(
            f"{prefix}_stats_entries", "(app, model, version) entries of per-version stats."
        )
        entries.add_metric([], len(self.stats))
        bound = GaugeMetricFamily(
            f"{prefix}_stats_max_entries", "The bound on per-version stats entries."
        )
        bound.add_metric([], self.stats.max_entries)
        yield from (requests, errors, defaults, labelled, loss, latency, entries, bound)


def _buckets(counts: list[int]) -> list[tuple[str, float]]:
    out, total = [], 0
    for bound, n in zip([*(str(b) for b in _BOUNDS_S), "+Inf"], counts, strict=True):
        total += n
        out.append((bound, float(total)))
    return out
