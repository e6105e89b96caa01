"""``clipper frontend``: run the query frontend.

Flags are generated from ``FrontendSettings``: each field is a flag
(``max_body_bytes`` -> ``--max-body-bytes``) and an environment variable
(``CLIPPER_FRONTEND_MAX_BODY_BYTES``) with the same help text, and a flag on the
command line wins over the environment. Registering imports no server code, so
``clipper --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from clipper.frontend.settings import FrontendSettings

log = logging.getLogger(__name__)

EPILOG = (
    "Every flag can also be set as an environment variable: --http-port is "
    "CLIPPER_FRONTEND_HTTP_PORT. Exit codes: 0 after a graceful shutdown on SIGTERM, "
    "1 when the routes file is invalid, 2 for invalid flags."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "frontend",
        help="the query frontend (OIP V2 REST and gRPC, Clipper REST)",
        description="Serve apps: batching, caching and model selection in front of "
        "model containers.",
        epilog=EPILOG,
    )
    for name, field in FrontendSettings.model_fields.items():
        kind = _scalar(field.annotation)
        text = " ".join((field.description or "").split())
        default = "unset" if field.default is None else repr(field.default)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=argparse.SUPPRESS,  # unset flags leave the environment in charge
            type=kind if kind in (int, float) else str,
            help=f"{text} (env CLIPPER_FRONTEND_{name.upper()}; default {default})",
        )
    parser.set_defaults(func=run)


def _scalar(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if args else str
    return annotation


def settings_from(args: argparse.Namespace) -> FrontendSettings:
    given = {k: v for k, v in vars(args).items() if k in FrontendSettings.model_fields}
    if "routes" in given:
        given["routes"] = Path(given["routes"])
    return FrontendSettings(**given)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValidationError as exc:
        for error in exc.errors():
            field = "-".join(str(part) for part in error["loc"]).replace("_", "-")
            log.error("invalid --%s: %s", field, error["msg"])
        return 2
    from clipper.frontend.server import run as serve

    return serve(settings)
