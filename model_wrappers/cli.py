"""``clipper model serve``: run a model container.

Flags are generated from ``ModelSettings`` and ``ServerSettings``, so each
field is a flag (``input_shape`` -> ``--input-shape``) and an environment
variable (``CLIPPER_MODEL_INPUT_SHAPE``) with the same help text, and a flag
given on the command line wins over the environment. Registering imports no
framework and no gRPC: ``clipper --help`` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import threading
import time
from typing import Any

from pydantic import BaseModel, ValidationError

from clipper.common.errors import ClipperError
from clipper.common.settings_cli import add_settings_flags, log_invalid
from clipper.common.settings_cli import settings_from as settings_from_args
from clipper.common.storage import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_S
from clipper.model_wrappers.settings import ModelSettings, ServerSettings

log = logging.getLogger(__name__)

SETTINGS: tuple[type[BaseModel], ...] = (ModelSettings, ServerSettings)
EPILOG = "Every flag can also be set as an environment variable: --input-shape is \
CLIPPER_MODEL_INPUT_SHAPE. Exit codes: 0 after a drain on SIGTERM, 1 when the model \
cannot be loaded or served, 2 for invalid flags."


def register(subparsers: Any) -> None:
    model = subparsers.add_parser("model", help="model containers (Open Inference Protocol)")
    commands = model.add_subparsers(dest="model_command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve one model version over OIP V2 gRPC",
        description="Serve one model version over the Open Inference Protocol V2 gRPC API.",
        epilog=EPILOG,
    )
    # Let a shape such as "-1,64" be a flag's value rather than look like a flag
    # (argparse only recognises plain negative numbers; this parser has no
    # options that look like numbers, so nothing else changes).
    serve._negative_number_matcher = re.compile(r"^-\d+(,\s*-?\d+)*$|^-\d*\.\d+$")
    for settings in SETTINGS:
        add_settings_flags(serve.add_argument_group((settings.__doc__ or "").rstrip(".")), settings)
    serve.set_defaults(func=run_serve)
    health = commands.add_parser(
        "health",
        help="check a model container's grpc.health.v1 status (exit 0 when SERVING)",
        description="Ask a model container whether it is SERVING, for Docker HEALTHCHECK "
        "or exec probes. Exit 0 when SERVING, 1 otherwise.",
    )
    health.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    health.add_argument(
        "--port", type=int, default=None, help="default CLIPPER_MODEL_PORT, else 8001"
    )
    health.add_argument("--timeout-s", type=float, default=3.0, help="default 3")
    health.set_defaults(func=run_health)
    register_fetch(commands)


def register_fetch(commands: Any) -> None:
    fetch = commands.add_parser(
        "fetch",
        help="download a model (http, https, s3) to a local file: the init container's command",
        description="Download the model at --uri to --dest, atomically: bounded by --max-bytes, "
        "each read timed out by --timeout-s, checked against the URI's #sha256= when given. "
        "S3 reads AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL), AWS_REGION, AWS_ACCESS_KEY_ID "
        "and AWS_SECRET_ACCESS_KEY from the environment.",
        epilog="Exit codes: 0 when the model is in place, 1 when it cannot be fetched (the "
        "last line says why), 2 for invalid flags.",
    )
    fetch.add_argument("--uri", required=True, help="http(s)://...[#sha256=HEX] or s3://B/KEY")
    fetch.add_argument("--dest", required=True, help="the local file to write")
    fetch.add_argument(
        "--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="default %(default)s (8 GiB)"
    )
    fetch.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, help="default 60")
    fetch.set_defaults(func=run_fetch)


def settings_from(args: argparse.Namespace) -> tuple[ModelSettings, ServerSettings]:
    """Both settings objects: command-line flags over environment over defaults."""
    return settings_from_args(args, ModelSettings), settings_from_args(args, ServerSettings)


def run_serve(args: argparse.Namespace) -> int:
    from clipper.model_wrappers.server import serve

    try:
        model_settings, server_settings = settings_from(args)
    except ValidationError as exc:
        return log_invalid(log, exc)
    code = asyncio.run(serve(model_settings, server_settings))
    _exit_without_waiting_for_model_threads(code)
    return code


def _exit_without_waiting_for_model_threads(code: int) -> None:
    """Exit now if a model call outlived the server (a load interrupted by SIGTERM,
    a predict past the grace period): the interpreter would otherwise wait for
    that worker thread at exit, however long it runs. Idle workers end at once."""
    from clipper.model_wrappers.base import WORKER_THREAD_PREFIX

    workers = [t for t in threading.enumerate() if t.name.startswith(WORKER_THREAD_PREFIX)]
    deadline = time.monotonic() + 1.0
    for thread in workers:
        thread.join(max(0.0, deadline - time.monotonic()))
    if busy := [t.name for t in workers if t.is_alive()]:
        log.warning("exiting while %s still runs a model call", ", ".join(busy))
        logging.shutdown()
        os._exit(code)


def run_health(args: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port = args.port or ServerSettings().port
    with grpc.insecure_channel(f"{args.host}:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=args.timeout_s
            )
        except grpc.RpcError as exc:
            print(f"{args.host}:{port}: {exc.code().name}: {exc.details()}")
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(f"{args.host}:{port}: {status}")
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1


def run_fetch(args: argparse.Namespace) -> int:
    """Fetch one model; its last ERROR line is the init container's termination message."""
    from pathlib import Path

    from clipper.common.storage import HttpUri, S3Uri, fetch, parse_uri

    try:
        location = parse_uri(args.uri)
        if not isinstance(location, HttpUri | S3Uri):
            log.error("%s: nothing to fetch: only http, https and s3 URIs are fetched", args.uri)
            return 2
        size = (
            fetch(location, Path(args.dest), max_bytes=args.max_bytes, timeout_s=args.timeout_s)
            .stat()
            .st_size
        )
    except ClipperError as exc:
        log.error("%s", exc.message)
        return 1
    log.info("fetched %s to %s (%d bytes)", location.url, args.dest, size)
    return 0
