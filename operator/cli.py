"""``clipper operator``: run the Kubernetes operator, or print what installs it.

    clipper operator [--namespace NS ...] [--peering NAME] [--kubeconfig FILE] ...
    clipper operator manifests [--install-namespace clipper-system] | kubectl apply -f -

Flags are generated from ``OperatorSettings`` (each field is a flag and a
``CLIPPER_OPERATOR_*`` variable, the flag wins). Registering imports neither kopf
nor a Kubernetes client, so ``clipper --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from pydantic import ValidationError

from clipper.common import logs
from clipper.common.settings_cli import add_settings_flags, field_help, log_invalid, settings_from
from clipper.operator.settings import OperatorSettings

log = logging.getLogger(__name__)

EPILOG = (
    "Every flag can also be set as an environment variable: --model-image is "
    "CLIPPER_OPERATOR_MODEL_IMAGE. Credentials: in a pod, its ServiceAccount; "
    "elsewhere --kubeconfig, $KUBECONFIG or ~/.kube/config. Exit codes: 0 after "
    "SIGTERM, 2 for invalid flags."
)
SPECIAL = {"namespaces", "peering"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="the Kubernetes operator (ClipperApp, ModelDeployment)",
        description="Reconcile ClipperApps and ModelDeployments into frontends and model "
        "Deployments, with rolling version swaps, automatic rollback and decommissioning.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "action",
        nargs="?",
        choices=["run", "manifests"],
        default="run",
        help="run (the default), or print the operator's install manifests (CRDs, "
        "RBAC, Deployment) as YAML",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        dest="namespaces",
        action="append",
        default=argparse.SUPPRESS,
        help="watch this namespace (repeat for more; globs such as team-* work; "
        "env CLIPPER_OPERATOR_NAMESPACES, comma-separated)",
    )
    scope.add_argument(
        "--all-namespaces",
        dest="namespaces",
        action="store_const",
        const=[],
        default=argparse.SUPPRESS,
        help="watch every namespace (the default)",
    )
    peers = parser.add_mutually_exclusive_group()
    peers.add_argument(
        "--peering", default=argparse.SUPPRESS, help=field_help(OperatorSettings, "peering")
    )
    peers.add_argument(
        "--standalone",
        dest="peering",
        action="store_const",
        const=None,
        default=argparse.SUPPRESS,
        help="no peering (the default; overrides CLIPPER_OPERATOR_PEERING)",
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (else $KUBECONFIG)")
    parser.add_argument(
        "--install-namespace",
        default="clipper-system",
        help="manifests: the namespace the operator is installed into (default clipper-system)",
    )
    add_settings_flags(parser, OperatorSettings, skip=SPECIAL)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args, OperatorSettings)
    except ValidationError as exc:
        return log_invalid(log, exc)
    if args.action == "manifests":
        from clipper.operator.builders.install import install_manifests

        sys.stdout.write(install_manifests(args.install_namespace, settings))
        return 0
    logs.reconfigure(settings.log_format)
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # read by kopf's login and our client
    from clipper.operator.runner import run as operate

    return operate(settings)
