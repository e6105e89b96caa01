"""Prometheus metrics of one model container, on their own registry.

One container serves one model version, so the model is not a label: Prometheus
adds the pod's labels when it scrapes, and ``clipper_model_info`` carries the
name, version, framework and device. Labels are resolved once here, so the hot
path is a few lock-protected additions per request.

    clipper_model_batch_size            histogram  rows per predicted batch
    clipper_model_predict_seconds       histogram  time in the model's predict
    clipper_model_request_seconds       histogram  a ModelInfer call, decode to encode
    clipper_model_requests_total        counter    ModelInfer calls, by gRPC code
    clipper_model_errors_total          counter    failed ModelInfer calls, by gRPC code
    clipper_model_inflight_requests     gauge      ModelInfer calls being served
    clipper_model_queued_batches        gauge      admitted batches waiting for a worker
    clipper_model_max_queued_batches    gauge      the bound on those (--max-queued-batches)
    clipper_model_rejected_total        counter    calls refused because that bound was hit
    clipper_model_max_concurrent_rpcs   gauge      gRPC's bound on RPCs of any kind
    clipper_model_info                  info       name, version, framework, device
"""

from __future__ import annotations

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
)  # fmt: skip


class ModelMetrics:
    """The metrics of one served model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.batch_size = Histogram(
            "clipper_model_batch_size",
            "Rows per predicted batch.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.predict_seconds = Histogram(
            "clipper_model_predict_seconds",
            "Seconds in the model's predict, per batch.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "clipper_model_request_seconds",
            "Seconds per ModelInfer call, from decoding the request to encoding the answer.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._requests = Counter(
            "clipper_model_requests",
            "ModelInfer calls, by gRPC status code.",
            ["code"],
            registry=self.registry,
        )
        self._errors = Counter(
            "clipper_model_errors",
            "Failed ModelInfer calls, by gRPC status code.",
            ["code"],
            registry=self.registry,
        )
        self.inflight = Gauge(
            "clipper_model_inflight_requests",
            "ModelInfer calls being served now.",
            registry=self.registry,
        )
        self.queued_batches = Gauge(
            "clipper_model_queued_batches",
            "Admitted ModelInfer batches waiting for a worker thread.",
            registry=self.registry,
        )
        self.max_queued_batches = Gauge(
            "clipper_model_max_queued_batches",
            "Batches that may wait for a worker before calls are refused (--max-queued-batches).",
            registry=self.registry,
        )
        self.rejected = Counter(
            "clipper_model_rejected",
            "ModelInfer calls refused with RESOURCE_EXHAUSTED: --max-queued-batches were waiting.",
            registry=self.registry,
        )
        self.max_concurrent_rpcs = Gauge(
            "clipper_model_max_concurrent_rpcs",
            "RPCs of any kind the server holds at once; gRPC refuses more (--max-concurrent-rpcs).",
            registry=self.registry,
        )
        self.info = Info("clipper_model", "The served model.", registry=self.registry)
        self._ok = self._requests.labels(grpc.StatusCode.OK.name)

    def request_done(self, code: grpc.StatusCode, seconds: float) -> None:
        self.request_seconds.observe(seconds)
        if code is grpc.StatusCode.OK:
            self._ok.inc()
            return
        self._requests.labels(code.name).inc()
        self._errors.labels(code.name).inc()

    def serve(self, host: str, port: int) -> int:
        """Expose ``/metrics`` over HTTP from a daemon thread; the port bound
        (``port`` 0: one the system picks)."""
        disable_created_metrics()  # no *_created series: this process only serves one model
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
