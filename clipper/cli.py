"""The ``clipper`` command.

Each component contributes its own subcommands through a ``register(subparsers)``
function in its ``cli`` module, so this file only assembles them. Registering must
stay cheap: components import their heavy dependencies (torch, kopf, aiohttp)
inside the command's handler, never at module level, so ``clipper --help`` and
``clipper run`` start fast.

    clipper model serve ...    a model container (clipper.model_wrappers)
    clipper frontend ...       the query frontend (clipper.frontend)
    clipper operator ...       the Kubernetes operator (clipper.operator)
    clipper run / apply / status   local mode, no cluster (clipper.local)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from clipper import __version__
from clipper.common import logs

COMMAND_MODULES = (
    "clipper.model_wrappers.cli",
    "clipper.frontend.cli",
    "clipper.operator.cli",
    "clipper.local.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clipper",
        description="Low-latency model serving: model containers, frontend, operator, local mode.",
    )
    parser.add_argument("--version", action="version", version=f"clipper {__version__}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("CLIPPER_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (env CLIPPER_LOG_LEVEL; default INFO)",
    )
    parser.add_argument(
        "--log-json",
        action="store_true",
        default=os.environ.get("CLIPPER_LOG_JSON", "") not in ("", "0", "false"),
        help="log one JSON object per line (env CLIPPER_LOG_JSON)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level, json_format=args.log_json)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
