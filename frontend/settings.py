"""How a frontend process is configured: one pydantic-settings model.

Every field is an environment variable (``CLIPPER_FRONTEND_<FIELD>``) and a
``clipper frontend --<field>`` flag, which wins; the docstring under a field is
its ``--help`` text, so the two never drift apart. What the frontend *serves*
(apps, models, replicas, SLOs, batching) is not here: it comes from discovery,
because it changes while the process runs. These are the process's own knobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_WORKERS = 64
"""More worker processes than a node has cores only adds context switches."""


class FrontendSettings(BaseSettings):
    """The query frontend's process settings."""

    model_config = SettingsConfigDict(
        env_prefix="CLIPPER_FRONTEND_",
        use_attribute_docstrings=True,
        extra="forbid",
        frozen=True,
    )

    routes: Path | None = None
    """Static routing table (YAML or JSON, reloaded when it changes). Without it (and
    without --kubernetes-app) the frontend starts with no apps."""

    kubernetes_app: str | None = None
    """Serve this ClipperApp, discovered from the Kubernetes API (its ModelDeployments'
    traffic and their EndpointSlices, followed live). Credentials: the pod's
    ServiceAccount, else $KUBECONFIG. Not with --routes."""

    kubernetes_namespace: str | None = None
    """The namespace of --kubernetes-app (default: the pod's own namespace)."""

    host: str = "127.0.0.1"
    """Address both servers bind; containers pass 0.0.0.0."""

    http_port: int = Field(default=8080, ge=0, le=65535)
    """Port of every REST route: OIP V2, Clipper's /{app}/predict and /metrics."""

    grpc_port: int = Field(default=8081, ge=0, le=65535)
    """Port of the OIP V2 gRPC API."""

    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest request body (REST) or message (gRPC); larger ones get 413 /
    RESOURCE_EXHAUSTED."""

    header_timeout_s: float = Field(default=10.0, gt=0)
    """Seconds a client has to send a complete request head, from opening the
    connection or from the head's first byte; then the connection is closed. Over
    gRPC: the HTTP/2 handshake's timeout."""

    body_timeout_s: float = Field(default=60.0, gt=0)
    """Seconds a request body may take to arrive in full, from its head; then 408 and
    the connection is closed."""

    keepalive_timeout_s: float = Field(default=75.0, gt=0)
    """Seconds an idle connection (REST keep-alive, gRPC) stays open; keep it above
    the idle timeout of any load balancer in front."""

    max_connections: int = Field(default=10_000, ge=1)
    """Open REST connections; past it a new connection gets 503 with Retry-After and
    is closed. Lowered at start-up, with a warning, to what the open-file limit allows."""

    grpc_max_concurrent_rpcs: int = Field(default=4096, ge=1)
    """gRPC calls served at once; past it a call gets RESOURCE_EXHAUSTED."""

    grpc_stream_max_inflight: int = Field(default=64, ge=1)
    """Requests one ModelStreamInfer stream has in flight (read, not yet answered), at
    most; past it the frontend stops reading that stream until an answer is sent, so
    HTTP/2 flow control holds the client back."""

    queue_capacity: int = Field(default=1024, ge=1)
    """Rows a model version's queue holds; when full, requests get 429 /
    RESOURCE_EXHAUSTED with Retry-After."""

    max_inflight_rows: int = Field(default=2048, ge=1)
    """The most rows the frontend holds at once (admitted, not yet answered), over
    every app. The limit in force adapts below it (cut when requests miss their
    objective, grown as rows are answered in time); a request that would pass it
    gets 429 with Retry-After at once, so load is shed before it costs CPU."""

    shed_late: bool = True
    """Answer 429 at the door to a request whose rows a model's queue could not drain
    before its deadline (estimated from the rows queued and the measured drain rate),
    instead of queueing rows that would only become defaults. In an ensemble that
    model is skipped for the request and the others answer."""

    pace_refusals: bool = True
    """Hold a 429 for the app's latency objective (at most 0.5 s, and over gRPC at most
    half the time the caller has left) before sending it, the time an answer would
    have taken. Clients that retry at once (load generators, naive retry loops)
    then send no faster than they would be served, instead of spending the frontend's
    CPU on refusals until the requests it admitted miss their objective too. Holding
    costs a timer, not CPU. Off: a 429 is sent at once."""

    aimd_initial: int = Field(default=1, ge=1)
    """Batch limit a replica starts with (adaptive batching)."""

    aimd_increase: int = Field(default=1, ge=1)
    """Rows added to a replica's batch limit after a full batch that met its budget."""

    aimd_decrease: float = Field(default=0.9, gt=0, lt=1)
    """Factor applied to a replica's batch limit after a batch overran its budget."""

    aimd_budget_fraction: float = Field(default=0.5, gt=0, le=1)
    """Share of the app's latency objective one batch may take. A query can wait for
    the batch in flight and then ride in the next, so two batches must fit."""

    health_interval_s: float = Field(default=1.0, gt=0)
    """Seconds between grpc.health.v1 checks of each replica."""

    feedback_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    """Bytes of recent queries each app remembers for feedback by query id (their
    output rows plus ~700 bytes each; oldest forgotten first; 0: feedback by input
    only)."""

    shadow_max_inflight_rows: int = Field(default=1024, ge=0)
    """Rows mirrored to Shadow candidates and not yet answered, at most; a mirror past
    it is dropped (counted in /metrics), never queued: mirroring costs the
    candidate's capacity, never a caller's latency. 0: no mirroring."""

    shadow_mirror_wait_ms: float = Field(default=50.0, ge=0, le=1000)
    """How long rows mirrored to a Shadow candidate wait for others to go with them,
    as one chunk: the frontend's own work per mirrored row (the candidate's call,
    its bookkeeping) shrinks with the rows a chunk carries, and that work is what a
    caller could pay. Measured at one connection (~700 requests/s): 10 ms made
    chunks of ~7 rows and cost 10-12% more frontend CPU per request and ~5% caller
    p50; 50 ms, ~35 rows and 3%, p50 within noise. Waiting rows count as in
    flight. 0: the rows of one turn of the event loop go together."""

    shadow_busy_lag_ms: float = Field(default=1.0, ge=0, le=1000)
    """Mirroring yields to callers: while a probe timer on the event loop runs more than
    this late, the share of answered requests mirrored to Shadow candidates halves per
    probe (down to 2%), and it grows back while the loop keeps up. 0: mirror every
    request, however busy the frontend (and ignore ``shadow_busy_cpu_share``)."""

    shadow_busy_cpu_share: float = Field(default=0.5, gt=0, le=1)
    """Mirroring yields to callers on a loaded frontend too: while the event loop's
    thread runs on a core for this share of a probe period or more (a loop full of
    callers' work keeps every timer on time), the mirrored share halves as for a late
    probe. Why half, not near 1: a caller's wait grows with the loop's utilization u
    as 1 / (1 - u), so the ~10% more work of mirroring everything already costs
    callers ~10% at u = 0.5, and more above. 1: only a loop that never rests."""

    shadow_max_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    """Bytes of Shadow candidates' answers kept until their label arrives (output rows
    plus ~300 bytes each; oldest forgotten first)."""

    version_stats_max_entries: int = Field(default=4096, ge=1)
    """(app, model, version) entries of per-version counters kept for rollout analysis
    (``GET /v1/stats/versions``; a few hundred bytes each; oldest dropped first)."""
    state_backend: Literal["memory", "redis"] = "memory"
    """Where learned selection state and the query log live: memory (this process
    alone, lost on restart) or redis (shared by every frontend replica and worker;
    needs --state-url)."""

    state_url: str | None = Field(default=None, repr=False)
    """The Redis URL (redis://[:password@]host:port/db, rediss:// for TLS, unix://).
    Pass it in the environment (CLIPPER_FRONTEND_STATE_URL) when it holds a password."""

    state_key_prefix: str = Field(default="clipper", min_length=1)
    """Prefix of every Redis key this frontend reads and writes."""

    state_refresh_s: float = Field(default=0.1, gt=0, le=60)
    """Seconds between the background flush of queued updates and the reload of the
    selection snapshot from Redis: the learning lag between replicas."""

    state_pending_max: int = Field(default=10_000, ge=1)
    """Queued selection updates not yet in Redis, counted as (app, context, model
    version) keys: updates to a key already queued merge (they are sums). Past it,
    updates to new keys are dropped and counted."""

    state_pending_max_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    """Bytes of answered queries queued for the Redis query log; past it the oldest
    queued ones are dropped (their feedback by id gets 404) and counted."""

    query_log_ttl_s: int = Field(default=3600, ge=1)
    """Redis backend: seconds an answered query can receive feedback by id."""

    query_log_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    """Redis backend: bytes of answered queries kept per app in Redis (oldest
    forgotten first). The memory backend's bound is --feedback-max-bytes."""

    seed: int | None = None
    """Seed for selection policies and version picks (reproducible experiments)."""

    grace_period_s: float = Field(default=30.0, ge=0)
    """On SIGTERM, how long in-flight requests may take before they are cancelled
    (counted after the drain delay)."""

    drain_delay_s: float = Field(default=0.0, ge=0)
    """On SIGTERM, seconds to keep accepting and answering with /readyz at 503 (and
    every REST answer closing its connection), so that load balancers take the
    frontend out of rotation before it stops listening; then in-flight requests get
    grace_period_s. A second signal, or SIGINT, skips the delay. Kubernetes needs a
    few seconds to remove a terminating pod from its Service's endpoints."""

    grpc_server: Literal["auto", "native", "python"] = "auto"
    """What serves the gRPC port. native: clipper-grpc-front, a Go program this
    process runs beside it, which relays each call's raw message to it over a Unix
    socket (2-4x cheaper per call than grpcio in Python); python: grpc.aio in this
    process; auto: native when the program is installed (beside this Python, or on
    the PATH, or at $CLIPPER_GRPC_FRONT), else python, saying so in the log."""

    grpc_reuse_port: bool = False
    """Bind the gRPC port with SO_REUSEPORT, so that a replacement frontend listens
    beside this one while it drains (local mode's frontend restarts). Off by default:
    a port in use is then an error, not silently shared."""

    http_fd: int | None = Field(default=None, ge=0)
    """Serve REST on this inherited, already listening socket instead of binding
    --http-port: a supervisor that holds the socket (local mode) restarts the
    frontend without ever refusing a connection."""

    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    """Frontend processes serving both ports (SO_REUSEPORT; the kernel spreads
    connections over them), each on its own core, under one supervising parent that
    restarts a worker that dies and forwards SIGTERM. Each worker has its own cache,
    feedback store, admission limit and batchers: give the pod as many CPUs."""

    worker: int | None = Field(default=None, ge=0, lt=MAX_WORKERS)
    """Set by the supervisor of --workers: this process is that worker (binds both
    ports with SO_REUSEPORT, answers /metrics and /readyz for all workers)."""

    worker_group: str | None = Field(default=None, pattern=r"^[0-9a-f-]{1,64}$")
    """Set by the supervisor of --workers: names the workers' control sockets."""

    @model_validator(mode="after")
    def _one_source(self) -> FrontendSettings:
        if self.routes is not None and self.kubernetes_app is not None:
            raise ValueError("give --routes or --kubernetes-app, not both")
        if self.state_backend == "redis" and not self.state_url:
            raise ValueError(
                "--state-backend redis needs --state-url (or CLIPPER_FRONTEND_STATE_URL), "
                "e.g. redis://127.0.0.1:6379/0"
            )
        if self.state_url is not None:
            check_redis_url(self.state_url)
        return self

    @model_validator(mode="after")
    def _one_worker(self) -> FrontendSettings:
        if self.worker is not None and (self.worker >= self.workers or self.worker_group is None):
            raise ValueError(
                "--worker is set by the supervisor of --workers: below --workers, "
                "with --worker-group"
            )
        return self


def check_redis_url(url: str) -> None:
    """``ValueError`` with the accepted forms unless ``url`` is a Redis URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("redis", "rediss", "unix") or not rest.strip():
        shown = url.split("@")[-1]  # never echo a password
        raise ValueError(
            f"state URL '{shown}' is not a Redis URL: expected redis://host:port/db, "
            "rediss://host:port/db (TLS) or unix:///path/to/socket"
        )
