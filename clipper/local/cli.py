"""``clipper run``, ``clipper apply`` and ``clipper status``: local mode's commands.

Registering imports nothing heavy; each handler imports what it needs. Exit
codes: 0 on success (``run``: after a clean shutdown on Ctrl-C or SIGTERM), 1
when the manifests are invalid, a port is taken, a model cannot start or no run
answers, 2 for invalid flags, 130 when a second Ctrl-C killed everything.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

RUN_EPILOG = (
    "Validates the manifests (schema, CEL rules, references, that model files exist),"
    " starts a model server per version and replica and one frontend, prints the"
    " endpoints, streams every process's log with a prefix, and applies a manifest again"
    " when its file changes. Ctrl-C or SIGTERM stops everything."
)


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="serve ClipperApp and ModelDeployment manifests locally, with no cluster",
        description="Serve ClipperApp and ModelDeployment manifests on this machine.",
        epilog=RUN_EPILOG,
    )
    _files(run, "manifest files or folders (repeatable), as kubectl apply -f takes them")
    run.add_argument("--host", default="127.0.0.1", help="address the frontend binds")
    run.add_argument(
        "--http-port",
        type=int,
        default=None,
        help="frontend REST port (default: the first ClipperApp's"
        " spec.frontend.service.httpPort, 8080; 0: any free port)",
    )
    run.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="frontend gRPC port (default: spec.frontend.service.grpcPort, 8081; 0: any)",
    )
    run.add_argument(
        "--no-watch", action="store_true", help="do not apply manifest files again when saved"
    )
    run.add_argument(
        "--stop-grace-s",
        type=float,
        default=30.0,
        help="how long a child may take to stop after SIGTERM before it is killed (default 30)",
    )
    run.add_argument(
        "--restart-backoff-s",
        type=float,
        default=1.0,
        help="first wait before a crashed child is restarted; doubles per crash (default 1)",
    )
    run.add_argument(
        "--restart-backoff-max-s",
        type=float,
        default=30.0,
        help="longest wait before a crashed child is restarted (default 30)",
    )
    run.add_argument(
        "--restart-healthy-after-s",
        type=float,
        default=10.0,
        help="a child healthy this long before it crashed is restarted after the first"
        " wait again (default 10)",
    )
    run.set_defaults(func=run_command)

    apply = subparsers.add_parser(
        "apply",
        help="apply manifests to a running `clipper run` (a version swap, a new model)",
        description="Create or update objects in a running `clipper run`, as kubectl apply"
        " does; a ModelDeployment whose spec.version changes rolls out as its spec asks.",
    )
    _files(apply, "manifest files or folders (repeatable)")
    _pid(apply)
    apply.set_defaults(func=apply_command)

    status = subparsers.add_parser(
        "status",
        help="what a running `clipper run` serves: apps, versions, traffic, weights",
        description="Show the apps, ModelDeployments, versions (phase, ready replicas,"
        " traffic), the frontend's selection weights and recent rollout events.",
    )
    _pid(status)
    status.add_argument("--json", action="store_true", help="print the raw status as JSON")
    status.add_argument(
        "-w", "--watch", action="store_true", help="refresh every --interval seconds"
    )
    status.add_argument("--interval", type=float, default=1.0, help="default 1")
    status.set_defaults(func=status_command)


def _files(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        dest="paths",
        metavar="PATH",
        action="append",
        required=True,
        type=Path,
        help=text,
    )


def _pid(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pid", type=int, default=None, help="which run, when several run on this machine"
    )


def _global_args(args: argparse.Namespace) -> tuple[str, ...]:
    flags = ("--log-level", str(getattr(args, "log_level", "INFO")))
    return (*flags, "--log-json") if getattr(args, "log_json", False) else flags


def _fail(command: str, message: str) -> int:
    print(f"clipper {command}: {message}", file=sys.stderr)
    return 1


def run_command(args: argparse.Namespace) -> int:
    import asyncio

    from pydantic import ValidationError

    from clipper.common import manifests
    from clipper.common.errors import ConfigError
    from clipper.local.settings import RunSettings

    try:
        settings = RunSettings(
            paths=tuple(args.paths),
            host=args.host,
            http_port=args.http_port,
            grpc_port=args.grpc_port,
            watch=not args.no_watch,
            stop_grace_s=args.stop_grace_s,
            restart_backoff_s=args.restart_backoff_s,
            restart_backoff_max_s=args.restart_backoff_max_s,
            restart_healthy_after_s=args.restart_healthy_after_s,
            global_args=_global_args(args),
        )
    except ValidationError as exc:
        for error in exc.errors():
            print(f"clipper run: invalid --{error['loc'][0]}: {error['msg']}", file=sys.stderr)
        return 2
    try:
        found = manifests.load(*settings.paths, check_models=True)
    except ConfigError as exc:
        return _fail("run", exc.message)
    from clipper.local.session import LocalRun

    return asyncio.run(LocalRun(settings, found).main())


def apply_command(args: argparse.Namespace) -> int:
    from clipper.common.errors import ClipperError
    from clipper.local.client import ControlClient, find_run

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        return _fail("apply", f"no such file or directory: {', '.join(missing)}")
    try:
        client = ControlClient(find_run(args.pid, near=args.paths))
        for line in client.apply(args.paths):
            print(line)
    except ClipperError as exc:
        return _fail("apply", exc.message)
    return 0


def status_command(args: argparse.Namespace) -> int:
    import json

    from clipper.common.errors import ClipperError
    from clipper.local.client import ControlClient, find_run
    from clipper.local.status import render

    try:
        client = ControlClient(find_run(args.pid), timeout=10)
        while True:
            state = client.status()
            text = json.dumps(state, indent=2) if args.json else render(state)
            if args.watch and sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")
            print(text, flush=True)
            if not args.watch:
                return 0
            time.sleep(args.interval)
            if not sys.stdout.isatty():
                print()
    except ClipperError as exc:
        return _fail("status", exc.message)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # piped into head or less, which has quit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
