"""What a model container is told: which model to load, and how to serve it.

Two flat pydantic-settings models share the ``CLIPPER_MODEL_`` prefix:
``ModelSettings`` is everything an adapter needs (it is all that ``load_model``
takes, so a model loads the same way in a test, a benchmark or a container), and
``ServerSettings`` is the transport around it. Every field can come from an
environment variable (``CLIPPER_MODEL_<FIELD>``) and from the matching
``clipper model serve --<field>`` flag, which wins. The docstring under each
field is its ``--help`` text (``use_attribute_docstrings``), so the two never
drift apart.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Framework = Literal["python", "sklearn", "pytorch", "onnx", "noop"]

# The Open Inference Protocol's datatypes (clipper.common.protocol.tensors.DTYPES,
# spelled out so that parsing flags does not import numpy; a test keeps them equal).
Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip

_CONFIG = SettingsConfigDict(
    env_prefix="CLIPPER_MODEL_",
    use_attribute_docstrings=True,
    extra="forbid",
    frozen=True,
)


class ModelSettings(BaseSettings):
    """Which model to load and how to run it."""

    model_config = _CONFIG

    framework: Framework
    """The adapter: python, sklearn, pytorch, onnx or noop."""

    name: str
    """Model name; requests must carry it as model_name."""

    uri: str = ""
    """What to load: module:function or a cloudpickle file (python), a joblib file
    (sklearn), a TorchScript file or a state_dict file (pytorch), an .onnx file."""

    version: str = "1"
    """Model version this container serves; a request may leave it empty."""

    method: Literal["predict", "predict_proba"] = "predict"
    """sklearn: the estimator method that answers requests."""

    factory: str = ""
    """pytorch: module:callable returning the nn.Module that the state_dict at
    --uri is loaded into. Without it, --uri is a TorchScript file."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """pytorch, onnx and python: auto uses CUDA when present; cuda requires it (the
    server exits with the reason when no GPU is usable, unless --cpu-fallback)."""

    cpu_fallback: bool = False
    """With --device cuda and no usable GPU: serve on CPU, with a warning, instead of
    exiting."""

    threads: int | None = None
    """CPU threads for torch, ONNX Runtime and scikit-learn's BLAS (default: the CPUs
    this container may use: its cgroup quota, else its CPU affinity)."""

    max_concurrency: int = 1
    """Batches predicted at once, each in its own worker thread. 1 runs one batch at
    a time, as Clipper's containers do: the frontend batches, and a second batch would
    only contend for the same cores. Raise it for models that wait on I/O."""

    input_name: str = "input"
    """Name of the declared input tensor (with --input-shape)."""

    input_datatype: Datatype | None = None
    """Datatype of the declared input, e.g. FP32 (default: FP64 for sklearn, FP32
    for pytorch; python and noop need it with --input-shape)."""

    input_shape: Annotated[tuple[int, ...] | None, NoDecode] = None
    """Shape of the declared input, batch dimension first as -1, e.g. -1,64. sklearn
    and onnx models declare their own; without one, python, pytorch and noop models
    accept any input."""

    output_name: str = "output"
    """Name of the output tensor when the model does not name its outputs."""

    @field_validator("input_shape", mode="before")
    @classmethod
    def _parse_shape(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            try:
                value = tuple(int(part) for part in text.split(",") if part.strip())
            except ValueError:
                raise ValueError(f"'{value}' is not a comma-separated list of integers") from None
        return value

    @field_validator("input_shape")
    @classmethod
    def _check_shape(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        if not value or value[0] != -1:
            raise ValueError("the shape starts with the batch dimension, -1 (e.g. -1,64)")
        if any(d < -1 or d == 0 for d in value[1:]):
            raise ValueError("dimensions after the batch dimension are positive, or -1 for any")
        return value

    @field_validator("max_concurrency")
    @classmethod
    def _check_concurrency(cls, value: int) -> int:
        if value < 1:
            raise ValueError("at least 1 batch must be able to run")
        return value


class ServerSettings(BaseSettings):
    """How the model is served."""

    model_config = _CONFIG

    host: str = "127.0.0.1"
    """Address the gRPC server binds; containers pass 0.0.0.0."""

    port: int = 8001
    """gRPC port (Open Inference Protocol and grpc.health.v1)."""

    metrics_port: int = 0
    """Prometheus metrics port on the same host (0: no metrics server; -1: any free
    port, reported in the ``listening on`` log line as ``port`` 0 is)."""

    max_message_bytes: int = 64 * 1024 * 1024
    """Largest request or response message, in bytes; larger ones fail with
    RESOURCE_EXHAUSTED."""

    max_queued_batches: int = Field(default=128, ge=0)
    """ModelInfer calls that may wait for a worker thread (beyond the
    --max-concurrency running); past that, a call is answered RESOURCE_EXHAUSTED at
    once instead of queueing without bound. The frontend sends one batch at a time
    per replica, so this only fills with many frontends or direct clients."""

    max_concurrent_rpcs: int = Field(default=256, ge=1)
    """RPCs of any kind (health checks and watches included) the server holds at
    once; past that, gRPC itself answers RESOURCE_EXHAUSTED ("Concurrent RPC limit
    exceeded!") before reading the request. Bounds memory at about this many times
    --max-message-bytes; must leave room above --max-concurrency plus
    --max-queued-batches for health probes."""

    grace_period_s: float = 30.0
    """On SIGTERM, how long in-flight requests may take to finish before they are
    cancelled."""

    drain_delay_s: float = 0.0
    """On SIGTERM, how long to keep accepting requests while health already reports
    NOT_SERVING, so load balancers stop routing here first."""
