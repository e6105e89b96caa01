"""Prometheus metrics of the frontend, cheap on the hot path.

Two kinds, chosen by cost:

* Events (a request's latency, a batch's size, a default answered) are
  histograms and counters whose label children are resolved once -- when an
  app, a replica or an error code is first seen -- so recording one is a
  single ``observe``/``inc`` on an object already in hand.
* State (queue depth, each replica's AIMD batch limit and health, cache
  counters, selection weights) is read from the live objects when Prometheus
  scrapes, by a custom collector. Nothing on the request path updates a gauge.

Every frontend has its own ``CollectorRegistry``, so several can run in one
test process. Children of replicas and apps that leave the routing table are
removed, so label sets do not pile up as deployments come and go.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clipper.common.tasks import TaskRegistry

PREFIX = "clipper_frontend"
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ReplicaState:
    model: str
    version: str
    replica: str
    up: bool
    batch_limit: int


@dataclass(frozen=True, slots=True)
class VersionState:
    model: str
    version: str
    queue_rows: int


@dataclass(frozen=True, slots=True)
class AppState:
    app: str
    cache: Any  # clipper.frontend.cache.CacheStats
    weights: dict[str, float]


class FeedbackState(Protocol):
    """One app's feedback store (``clipper.frontend.feedback.FeedbackStats``)."""

    @property
    def app(self) -> str: ...
    @property
    def entries(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def evictions(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the collector reads at scrape time."""

    apps: list[AppState]
    versions: list[VersionState]
    replicas: list[ReplicaState]


class Metrics:
    """All metric families of one frontend, and their pre-resolved children."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.request_latency = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from receiving a request to answering it, per app and API.",
            ["app", "api"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.defaults = Counter(
            f"{PREFIX}_default_outputs",
            "Queries answered with the app's default output, by reason.",
            ["app", "reason"],
            registry=reg,
        )
        self.errors = Counter(
            f"{PREFIX}_errors",
            "Requests answered with an error, by API and status code.",
            ["api", "code"],
            registry=reg,
        )
        self.feedback = Counter(
            f"{PREFIX}_feedback", "Labels received, per app.", ["app"], registry=reg
        )
        self.shed = Counter(
            f"{PREFIX}_shed_requests",
            "Requests refused with 429 at the door, by app and reason (inflight: the "
            "frontend's bound on rows in flight; late: a model's queue could not drain "
            "before the deadline; queue_full: a model's queue is full).",
            ["app", "reason"],
            registry=reg,
        )
        self.passed_over = Counter(
            f"{PREFIX}_passed_over_requests",
            "Requests whose model selection left out a model that could not answer them"
            " in time (every version's queue full, or longer than the request had left)"
            " while another model could, by app and model.",
            ["app", "model"],
            registry=reg,
        )
        self.inflight_rows = Gauge(
            f"{PREFIX}_inflight_rows", "Rows admitted and not yet answered.", registry=reg
        )
        self.inflight_rows_limit = Gauge(
            f"{PREFIX}_inflight_rows_limit",
            "The adaptive limit on rows in flight (429 past it).",
            registry=reg,
        )
        self.inflight_rows_bound = Gauge(
            f"{PREFIX}_inflight_rows_bound",
            "The fixed bound on the limit (max_inflight_rows).",
            registry=reg,
        )
        labels = ["model", "version", "replica"]
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size",
            "Rows per batch sent to a replica (answered or not).",
            labels,
            buckets=SIZE_BUCKETS,
            registry=reg,
        )
        self.batch_latency = Histogram(
            f"{PREFIX}_batch_duration_seconds",
            "Time a replica took to answer a batch successfully, as the frontend sees it.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.queue_wait = Histogram(
            f"{PREFIX}_queue_wait_seconds",
            "Time a query waited in its model version's queue before its batch left.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.retries = Counter(
            f"{PREFIX}_retried_rows",
            "Rows of failed batches put back in the queue for another replica.",
            labels,
            registry=reg,
        )
        self.retries_exhausted = Counter(
            f"{PREFIX}_retries_exhausted_rows",
            "Rows that failed on a replica after a retry (lost to retry exhaustion).",
            labels,
            registry=reg,
        )
        self.connections_closed = Counter(
            f"{PREFIX}_http_connections_closed",
            "REST connections closed before a normal end, by reason: refused (over "
            "max_connections), header_timeout, body_timeout, client_disconnected.",
            ["reason"],
            registry=reg,
        )
        self.open_connections = Gauge(
            f"{PREFIX}_http_connections", "Open REST connections.", registry=reg
        )
        self.max_connections = Gauge(
            f"{PREFIX}_http_max_connections",
            "The bound on open REST connections (max_connections, as the open-file limit allows).",
            registry=reg,
        )
        self.grpc_max_concurrent_rpcs = Gauge(
            f"{PREFIX}_grpc_max_concurrent_rpcs",
            "The bound on gRPC calls served at once (grpc_max_concurrent_rpcs).",
            registry=reg,
        )
        self.grpc_streams = Gauge(
            f"{PREFIX}_grpc_streams", "Open ModelStreamInfer streams.", registry=reg
        )
        self.grpc_stream_inflight = Gauge(
            f"{PREFIX}_grpc_stream_inflight",
            "Requests read from ModelStreamInfer streams and not yet answered (all streams).",
            registry=reg,
        )
        self.grpc_stream_max_inflight = Gauge(
            f"{PREFIX}_grpc_stream_max_inflight",
            "The bound on one stream's requests in flight (grpc_stream_max_inflight).",
            registry=reg,
        )
        self.grpc_front_links = Gauge(
            f"{PREFIX}_grpc_front_links",
            "Links from the native gRPC front to this process (1 while it can reach this "
            "process; 0 under grpc.aio, or while the front restarts).",
            registry=reg,
        )
        self._closed_children: dict[str, Any] = {}
        self._error_children: dict[tuple[str, str], Any] = {}
        self._state = _StateCollector()
        reg.register(self._state)
        self._feedback = _FeedbackCollector()
        reg.register(self._feedback)
        self._backend = _BackendCollector()
        reg.register(self._backend)

    def watch(self, snapshot: Callable[[], Snapshot]) -> None:
        """Where the collector reads the live state from (the router)."""
        self._state.snapshot = snapshot

    def watch_tasks(self, tasks: TaskRegistry) -> None:
        """Where the collector reads the crash counts of long-lived tasks from."""
        self._state.tasks = tasks

    def watch_feedback(self, stats: Callable[[], Iterable[FeedbackState]], max_bytes: int) -> None:
        """Where the feedback store's per-app bytes, entries and evictions are read."""
        self._feedback.stats = stats
        self._feedback.max_bytes = max_bytes

    def watch_state(self, stats: Callable[[], Any]) -> None:
        """Where the selection-state backend's health and bounds are read
        (``clipper.frontend.state.StateStats``)."""
        self._backend.stats = stats

    def watch_connections(self, count: Callable[[], int], bound: int) -> None:
        """Where the number of open REST connections is read, and their bound."""
        self.open_connections.set_function(count)
        self.max_connections.set(bound)

    def watch_streams(
        self, streams: Callable[[], float], inflight: Callable[[], float], bound: int
    ) -> None:
        """Where the open ModelStreamInfer streams and their requests in flight are
        read, and the per-stream bound."""
        self.grpc_streams.set_function(streams)
        self.grpc_stream_inflight.set_function(inflight)
        self.grpc_stream_max_inflight.set(bound)

    def connection_closed(self, reason: str) -> None:
        child = self._closed_children.get(reason)
        if child is None:
            child = self._closed_children[reason] = self.connections_closed.labels(reason)
        child.inc()

    def watch_admission(
        self, rows: Callable[[], float], limit: Callable[[], float], bound: int
    ) -> None:
        """Where the in-flight gauges read from (the admission control), and its bound."""
        self.inflight_rows.set_function(rows)
        self.inflight_rows_limit.set_function(limit)
        self.inflight_rows_bound.set(bound)

    def error(self, api: str, code: str, count: int = 1) -> None:
        child = self._error_children.get((api, code))
        if child is None:
            child = self._error_children[(api, code)] = self.errors.labels(api, code)
        child.inc(count)

    def app(self, name: str) -> AppMetrics:
        return AppMetrics(self, name)

    def replica(self, model: str, version: str, address: str) -> ReplicaMetrics:
        return ReplicaMetrics(self, (model, version, address))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class AppMetrics:
    """One app's children: request latency per API, defaults per reason."""

    def __init__(self, metrics: Metrics, app: str) -> None:
        self._metrics = metrics
        self.app = app
        self._latency: dict[str, Any] = {}
        self._defaults: dict[str, Any] = {}
        self._shed: dict[str, Any] = {}
        self._passed_over: dict[str, Any] = {}
        self.feedback = metrics.feedback.labels(app)

    def latency(self, api: str) -> Any:
        child = self._latency.get(api)
        if child is None:
            child = self._latency[api] = self._metrics.request_latency.labels(self.app, api)
        return child

    def default(self, reason: str) -> None:
        child = self._defaults.get(reason)
        if child is None:
            child = self._defaults[reason] = self._metrics.defaults.labels(self.app, reason)
        child.inc()

    def shed(self, reason: str) -> None:
        child = self._shed.get(reason)
        if child is None:
            child = self._shed[reason] = self._metrics.shed.labels(self.app, reason)
        child.inc()

    def passed_over(self, model: str) -> None:
        child = self._passed_over.get(model)
        if child is None:
            child = self._passed_over[model] = self._metrics.passed_over.labels(self.app, model)
        child.inc()


class ReplicaMetrics:
    """One replica's children; also the batcher's ``BatchObserver``."""

    def __init__(self, metrics: Metrics, labels: tuple[str, str, str]) -> None:
        self._labels = labels
        self._families: tuple[Histogram | Counter, ...] = (
            metrics.batch_size,
            metrics.batch_latency,
            metrics.queue_wait,
            metrics.retries,
            metrics.retries_exhausted,
        )
        self._size = metrics.batch_size.labels(*labels)
        self._latency = metrics.batch_latency.labels(*labels)
        self._wait = metrics.queue_wait.labels(*labels)
        self._retried = metrics.retries.labels(*labels)
        self._exhausted = metrics.retries_exhausted.labels(*labels)

    def sent(self, rows: int, waits: list[float]) -> None:
        self._size.observe(rows)
        for wait in waits:
            self._wait.observe(wait)

    def answered(self, latency_s: float) -> None:
        self._latency.observe(latency_s)

    def retried(self, rows: int, exhausted: bool) -> None:
        (self._exhausted if exhausted else self._retried).inc(rows)

    def close(self) -> None:
        for family in self._families:
            with contextlib.suppress(KeyError):
                family.remove(*self._labels)


class _StateCollector(Collector):
    """Gauges and counters read from the live objects at scrape time."""

    def __init__(self) -> None:
        self.snapshot: Callable[[], Snapshot] | None = None
        self.tasks: TaskRegistry | None = None

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.tasks is not None:
            yield _task_metrics(self.tasks.crashes)
        if self.snapshot is None:
            return
        state = self.snapshot()
        yield from _version_metrics(state.versions)
        yield from _replica_metrics(state.replicas)
        yield from _cache_metrics(state.apps)
        weights = GaugeMetricFamily(
            f"{PREFIX}_selection_weight",
            "Each model's selection probability (exp4: ensemble weight), default context.",
            labels=["app", "model"],
        )
        for app in state.apps:
            for model, weight in app.weights.items():
                weights.add_metric([app.app, model], weight)
        yield weights


def _task_metrics(crashes: dict[str, int]) -> Metric:
    family = CounterMetricFamily(
        f"{PREFIX}_task_crashes",
        "Crashes of long-lived tasks (logged with a traceback; restarted, or /readyz red).",
        labels=["task"],
    )
    for task, count in crashes.items():
        family.add_metric([task], count)
    return family


def _version_metrics(versions: list[VersionState]) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        f"{PREFIX}_queue_depth",
        "Rows waiting in a model version's queue.",
        labels=["model", "version"],
    )
    for v in versions:
        depth.add_metric([v.model, v.version], v.queue_rows)
    yield depth


def _replica_metrics(replicas: list[ReplicaState]) -> Iterator[Metric]:
    labels = ["model", "version", "replica"]
    limit = GaugeMetricFamily(
        f"{PREFIX}_batch_limit", "A replica's current (AIMD) batch size limit.", labels=labels
    )
    up = GaugeMetricFamily(f"{PREFIX}_replica_up", "1 if a replica takes work.", labels=labels)
    for r in replicas:
        limit.add_metric([r.model, r.version, r.replica], r.batch_limit)
        up.add_metric([r.model, r.version, r.replica], 1.0 if r.up else 0.0)
    yield limit
    yield up


def _cache_metrics(apps: list[AppState]) -> Iterator[Metric]:
    counters = {
        name: CounterMetricFamily(f"{PREFIX}_cache_{name}", help_text, labels=["app"])
        for name, help_text in (
            ("hits", "Cache lookups answered from the cache."),
            ("misses", "Cache lookups that started a model evaluation."),
            ("coalesced", "Lookups that joined an identical evaluation in flight."),
            ("evictions", "Cache entries evicted to stay within the byte bound."),
            ("kept_out", "Rows not stored: the cache was full and had not sighted them before."),
        )
    }
    size = GaugeMetricFamily(f"{PREFIX}_cache_bytes", "Bytes held by the cache.", labels=["app"])
    bound = GaugeMetricFamily(
        f"{PREFIX}_cache_max_bytes", "The cache's bound in bytes.", labels=["app"]
    )
    doorkeeper = GaugeMetricFamily(
        f"{PREFIX}_cache_doorkeeper_bytes",
        "Bytes of the cache's bound set aside for its doorkeeper (admission once full).",
        labels=["app"],
    )
    ratio = GaugeMetricFamily(
        f"{PREFIX}_cache_hit_ratio",
        "Share of lookups answered without a new evaluation (hits and coalesced).",
        labels=["app"],
    )
    for app in apps:
        stats = app.cache
        for name, family in counters.items():
            family.add_metric([app.app], getattr(stats, name))
        size.add_metric([app.app], stats.bytes)
        bound.add_metric([app.app], stats.max_bytes)
        doorkeeper.add_metric([app.app], stats.doorkeeper_bytes)
        ratio.add_metric([app.app], stats.hit_ratio)
    yield from counters.values()
    yield size
    yield bound
    yield doorkeeper
    yield ratio


class _FeedbackCollector(Collector):
    """The feedback store's bound and use per app, read at scrape time."""

    def __init__(self) -> None:
        self.stats: Callable[[], Iterable[FeedbackState]] | None = None
        self.max_bytes = 0

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.stats is None:
            return
        size = GaugeMetricFamily(
            f"{PREFIX}_feedback_store_bytes",
            "Bytes of queries an app's feedback store holds (bound: feedback_max_bytes).",
            labels=["app"],
        )
        entries = GaugeMetricFamily(
            f"{PREFIX}_feedback_store_entries",
            "Queries an app's feedback store holds for feedback by query id.",
            labels=["app"],
        )
        evictions = CounterMetricFamily(
            f"{PREFIX}_feedback_store_evictions",
            "Queries evicted from an app's feedback store to stay within its byte bound.",
            labels=["app"],
        )
        bound = GaugeMetricFamily(
            f"{PREFIX}_feedback_store_max_bytes",
            "The byte bound of each app's feedback store (feedback_max_bytes).",
        )
        bound.add_metric([], self.max_bytes)
        yield bound
        for app in self.stats():
            size.add_metric([app.app], app.bytes)
            entries.add_metric([app.app], app.entries)
            evictions.add_metric([app.app], app.evictions)
        yield size
        yield entries
        yield evictions


class _BackendCollector(Collector):
    """The selection-state backend (memory or Redis): reachable, queued, dropped."""

    def __init__(self) -> None:
        self.stats: Callable[[], Any] | None = None

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.stats is None:
            return
        s = self.stats()
        gauges = {
            "state_backend_up": (
                "1 while the selection-state backend is reachable (memory: always); 0: "
                "serving on the last snapshot, updates queued.",
                float(s.reachable),
            ),
            "state_pending_updates": (
                "Queued selection updates not yet in the backend, as (app, context, "
                "model version) keys.",
                s.pending_updates,
            ),
            "state_pending_max": ("The bound on queued update keys.", s.pending_max),
            "state_pending_log_bytes": (
                "Bytes of answered queries queued for the shared query log.",
                s.pending_log_bytes,
            ),
            "state_pending_log_max_bytes": (
                "The byte bound on queued query-log entries.",
                s.pending_log_max_bytes,
            ),
        }
        for name, (doc, value) in gauges.items():
            family = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=["backend"])
            family.add_metric([s.backend], value)
            yield family
        counters = {
            "state_dropped_updates": (
                "Selection updates dropped at the pending bound (learning lost).",
                s.dropped_updates,
            ),
            "state_dropped_log_entries": (
                "Queued query-log entries dropped at the byte bound (their feedback: 404).",
                s.dropped_log_entries,
            ),
        }
        for name, (doc, value) in counters.items():
            counter = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=["backend"])
            counter.add_metric([s.backend], value)
            yield counter
