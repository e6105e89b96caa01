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
from typing import Any

from pydantic import ValidationError

from clipper.common.settings_cli import add_settings_flags, log_invalid, settings_from
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
    add_settings_flags(parser, FrontendSettings)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args, FrontendSettings)
    except ValidationError as exc:
        return log_invalid(log, exc)
    from clipper.frontend.server import run as serve

    return serve(settings)
