"""The frontend's two ports: which ones, who asked for them, and whether they are free.

In a cluster each ClipperApp's Service has its own ports; locally one frontend
serves every app, so it listens where the first ClipperApp says
(``spec.frontend.service``, 8080 and 8081 by default) unless ``--http-port`` /
``--grpc-port`` say otherwise. Each choice remembers who asked for it, so a port
in use is reported with the flag or the manifest field to change -- before
anything starts. The REST port is bound and listened on by the run itself
(``listen``) and inherited by each frontend it starts, so restarting the frontend
never refuses a connection.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from clipper.common import api
from clipper.common.errors import ConfigError


@dataclass(frozen=True)
class PortChoice:
    port: int
    origin: str
    """Who asked for it: a flag, or ``ClipperApp/NAME spec.frontend.service.httpPort``."""


def frontend_ports(
    apps: list[api.ClipperApp], http_flag: int | None, grpc_flag: int | None
) -> tuple[PortChoice, PortChoice]:
    """The REST and gRPC ports of the run's one frontend."""
    service = apps[0].spec.frontend.service if apps else api.ServiceSpec()
    where = f"ClipperApp/{apps[0].metadata.name} spec.frontend.service" if apps else "the default"
    http = (
        PortChoice(http_flag, "--http-port")
        if http_flag is not None
        else PortChoice(service.http_port, f"{where}.httpPort")
    )
    grpc = (
        PortChoice(grpc_flag, "--grpc-port")
        if grpc_flag is not None
        else PortChoice(service.grpc_port, f"{where}.grpcPort")
    )
    if http.port == grpc.port and http.port != 0:
        raise ConfigError(f"REST ({http.origin}) and gRPC ({grpc.origin}) both ask for {http.port}")
    return http, grpc


def ignored_ports(apps: list[api.ClipperApp], among: set[str] | None = None) -> list[str]:
    """Apps after the first that ask for other frontend ports (not the defaults), which
    local mode ignores; ``among`` limits the answer to those app names."""
    if not apps:
        return []
    first = apps[0].spec.frontend.service
    default = api.ServiceSpec()
    chosen = (first.http_port, first.grpc_port)
    ignored = []
    for app in apps[1:]:
        service = app.spec.frontend.service
        asked = (service.http_port, service.grpc_port)
        if asked not in (chosen, (default.http_port, default.grpc_port)):
            ignored.append(app.metadata.name)
    return [f"ClipperApp/{n}" for n in ignored if among is None or n in among]


def check_free(host: str, choice: PortChoice) -> None:
    """``ConfigError`` naming the port and who asked for it if it cannot be bound."""
    if choice.port == 0:
        return
    with _bound(host, choice):
        pass


def listen(host: str, choice: PortChoice) -> socket.socket:
    """A listening socket on ``choice`` for the frontends of the run to inherit in turn.

    The run holds it, not the frontend: while one frontend replaces another (or a
    crashed one is restarted), connections wait in its backlog instead of being
    refused. ``ConfigError`` as ``check_free`` when it cannot be bound."""
    sock = _bound(host, choice)
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


BACKLOG = 1024


def _bound(host: str, choice: PortChoice) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the frontend binds
    try:
        sock.bind((host, choice.port))
        return sock
    except OSError as exc:
        sock.close()
        in_use = exc.errno == errno.EADDRINUSE
        why = "is already in use" if in_use else f"cannot be bound: {exc}"
        raise ConfigError(
            f"port {choice.port} on {host} {why} (asked for by {choice.origin});"
            " stop what listens there, or choose another port with --http-port/--grpc-port",
        ) from None
