"""``clipper frontend --workers N``: a parent that runs N frontend processes.

One Python process serves on one core (the GIL; grpcio's per-call cost in
particular), so a pod that should use N cores runs N whole frontends, each a
``clipper frontend`` of its own, sharing both listening ports through
SO_REUSEPORT: the kernel spreads new connections over the workers by a hash of
their addresses, with no process in the data path. Workers are processes, not
forks of a running frontend: a fork would copy gRPC's threads' locks mid-use.

The parent (this module) only supervises:

* it reserves the ports first (a socket bound with SO_REUSEPORT, never listening,
  so it takes no connections), so port 0 becomes one concrete port that every
  worker binds, and no other program can take the port between two restarts;
  an inherited ``--http-fd`` (local mode) is passed to every worker instead;
* it starts each worker through ``clipper.common.tasks.supervise``: a worker that
  exits unasked is logged with its exit status and restarted after a back-off
  (0.5 s doubling to 30 s); exit status 1 or 2 (an invalid routes file, invalid
  flags) is a configuration error that a restart cannot fix: the parent then
  stops the others and exits with it, and the pod's restart policy takes over;
* it forwards SIGTERM and SIGINT to every worker, which drain as a single
  frontend does (``server.py``), and exits once they all have: 0 if every
  worker exited 0;
* each worker asks the kernel for SIGTERM if the parent dies
  (``PR_SET_PDEATHSIG``), so a parent killed outright leaves no worker behind.

What stays per worker is documented in docs/architecture.md (frontend,
Workers): the cache, the feedback store, admission control's limits, and each
replica's AIMD batch limit (every worker batches its own share of the traffic).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from clipper.common import logs
from clipper.common.errors import ConfigError
from clipper.common.tasks import (
    Backoff,
    Supervised,
    TaskRegistry,
    describe_exit,
    spawn,
    supervise,
)
from clipper.frontend.grpc.native import FrontRunner, front_program, worker_link_address
from clipper.frontend.grpc.server import GrpcLimits
from clipper.frontend.settings import FrontendSettings

log = logging.getLogger(__name__)

RESTART_BACKOFF = Backoff(first_s=0.5, max_s=30.0, healthy_after_s=30.0)
CONFIG_EXITS = (1, 2)
"""``clipper frontend`` exits 1 for an invalid routes file, 2 for invalid flags."""
OWN_FLAGS = ("worker", "worker_group", "http_port", "grpc_port", "grpc_reuse_port", "grpc_server")


class WorkerExited(Exception):
    """A worker exited while nobody asked it to."""


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with SO_REUSEPORT, not listening: it holds the
    port (and picks one for port 0) while the workers' listening sockets share it."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _flag_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _secret(name: str) -> bool:
    """A setting kept out of command lines (``/proc/<pid>/cmdline`` is world-readable)."""
    return FrontendSettings.model_fields[name].repr is False


def settings_flags(settings: FrontendSettings) -> Iterator[str]:
    """``settings`` as ``clipper frontend`` flags, but those the parent sets per worker
    and secrets (``worker_env``)."""
    for name in FrontendSettings.model_fields:
        value = getattr(settings, name)
        if name in OWN_FLAGS or value is None or _secret(name):
            continue
        yield f"--{name.replace('_', '-')}"
        yield _flag_value(value.as_posix() if isinstance(value, Path) else value)


def worker_env(settings: FrontendSettings) -> dict[str, str]:
    """The parent's environment, plus the secret settings (a Redis URL with its
    password) as ``CLIPPER_FRONTEND_<NAME>``, however the parent got them."""
    prefix = FrontendSettings.model_config.get("env_prefix", "")
    env = dict(os.environ)
    for name in FrontendSettings.model_fields:
        value = getattr(settings, name)
        if _secret(name) and value is not None:
            env[f"{prefix}{name.upper()}"] = str(value)
    return env


def _log_flags() -> list[str]:
    """The parent's logging set-up, for the workers' command line."""
    root = logging.getLogger()
    flags = ["--log-level", logging.getLevelName(root.getEffectiveLevel())]
    if any(isinstance(h.formatter, logs.JsonFormatter) for h in root.handlers):
        flags.append("--log-json")
    return flags


class WorkerPool:
    """The parent of ``settings.workers`` frontend processes."""

    def __init__(self, settings: FrontendSettings) -> None:
        self.settings = settings
        self.group = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.tasks = TaskRegistry()
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self._slots: list[Supervised] = []
        self._reserved: list[socket.socket] = []
        self._ports = (settings.http_port, settings.grpc_port)
        self._stopping: signal.Signals | None = None
        self._config_exit: int | None = None
        self._exits: dict[int, int] = {}
        self.front: FrontRunner | None = None
        """The native gRPC front, serving every worker (``--grpc-server``)."""
        self._grpc_server = "python"
        self._front_stop: asyncio.TimerHandle | None = None
        self._front_stopping = False

    def command(self, index: int) -> list[str]:
        http_port, grpc_port = self._ports
        return [
            *(sys.executable, "-m", "clipper", *_log_flags(), "frontend"),
            *settings_flags(self.settings),
            *("--http-port", str(http_port), "--grpc-port", str(grpc_port)),
            *("--worker", str(index), "--worker-group", self.group),
            *("--grpc-server", self._grpc_server),
        ]

    def _reserve(self) -> None:
        host = self.settings.host
        http_port, grpc_port = self._ports
        if self.settings.http_fd is None:
            self._reserved.append(reserve_port(host, http_port))
            http_port = self._reserved[-1].getsockname()[1]
        self._reserved.append(reserve_port(host, grpc_port))
        self._ports = (http_port, self._reserved[-1].getsockname()[1])

    async def run(self) -> int:
        """Start the workers, keep them running, return once they have all stopped."""
        self._reserve()
        if self.settings.state_backend == "memory":
            log.warning(
                "frontend supervisor: %d workers with --state-backend memory: each worker "
                "learns alone and feedback by query id reaches only the worker that answered "
                "the query; use --state-backend redis (a ClipperApp requires it)",
                self.settings.workers,
            )
        try:
            program = front_program(self.settings.grpc_server)
        except ConfigError as exc:
            log.error("frontend supervisor: cannot start: %s", exc)
            return 1
        self._grpc_server = "python" if program is None else "native"
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signum)
        log.info(
            "frontend supervisor: %d workers on ports %d (REST) and %d (gRPC, %s)",
            self.settings.workers,
            *self._ports,
            "one native front for all workers" if program else "grpc.aio in each worker",
        )
        self._slots = [
            supervise(
                f"worker {i}",
                functools.partial(self._run_worker, i),
                registry=self.tasks,
                backoff=RESTART_BACKOFF,
            )
            for i in range(self.settings.workers)
        ]
        tasks = [slot.task for slot in self._slots]
        front = None if program is None else await self._start_front(program)
        if front is not None:
            tasks.append(front)
        await asyncio.wait(tasks)
        for sock in self._reserved:
            sock.close()
        if self._config_exit is not None:
            return self._config_exit
        return 0 if not any(self._exits.values()) else 1

    async def _start_front(self, program: Path) -> asyncio.Task[None] | None:
        """Start the gRPC front for every worker's link: the task that keeps it running
        (done once it has stopped); None if it cannot start: then the workers stop
        too, and the parent exits 1."""
        settings = self.settings
        self.front = FrontRunner(
            program,
            [worker_link_address(self.group, i) for i in range(settings.workers)],
            settings.host,
            self._ports[1],
            settings.max_body_bytes,
            GrpcLimits.of(settings),
            settings.grace_period_s,
            True,
            self.tasks,
        )
        try:
            await self.front.start()
        except ConfigError as exc:
            log.error("frontend supervisor: cannot start: %s", exc)
            self._config_exit = 1
            self.front = None
            self.stop(signal.SIGINT)
            return None
        return self.front.task

    def _stop_front(self, signum: signal.Signals) -> None:
        """The front drains with the workers (NOT_SERVING through their drain delay),
        then stops; SIGINT or a second signal stops it at once."""
        front = self.front
        if front is None or self._front_stopping:
            return
        delay = self.settings.drain_delay_s
        if signum == signal.SIGTERM and self._stopping is None and delay > 0:
            front.drain()
            self._front_stop = asyncio.get_running_loop().call_later(
                delay, self._stop_front, signal.SIGINT
            )
            return
        if self._front_stop is not None:
            self._front_stop.cancel()
        self._front_stopping = True
        spawn(front.stop(), "grpc_front stop", self.tasks)

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> None:
        """Forward ``signum`` to every worker (again on a second signal: they then skip
        their drain delay); workers waiting for a restart are not restarted; the gRPC
        front drains and stops with them."""
        log.info(
            "frontend supervisor: %s, forwarding it to %d workers", signum.name, len(self.processes)
        )
        self._stop_front(signum)
        self._stopping = signum
        for index, slot in enumerate(self._slots):
            if index not in self.processes:
                slot.cancel()
        for process in self.processes.values():
            process.send_signal(signum)

    async def _run_worker(self, index: int) -> None:
        fds = [] if self.settings.http_fd is None else [self.settings.http_fd]
        # Its own session (and process group): a signal to the parent's group (a terminal's Ctrl-C,
        # local mode's stop) reaches the workers once, forwarded, not twice (a second
        # signal would cut their drain short).
        process = await asyncio.create_subprocess_exec(
            *self.command(index),
            pass_fds=fds,
            start_new_session=True,
            env=worker_env(self.settings),
        )
        self.processes[index] = process
        log.info("frontend worker %d started (pid %d)", index, process.pid)
        if self._stopping is not None:
            process.send_signal(self._stopping)
        try:
            returncode = await process.wait()
        finally:
            del self.processes[index]
        self._exits[index] = returncode
        if self._stopping is not None:
            log.info("frontend worker %d stopped (%s)", index, describe_exit(returncode))
            return
        if returncode in CONFIG_EXITS:
            log.error(
                "frontend worker %d exited with status %d (its configuration); stopping",
                index,
                returncode,
            )
            self._config_exit = returncode
            self.stop(signal.SIGINT)
            return
        raise WorkerExited(
            f"frontend worker {index} (pid {process.pid}) {describe_exit(returncode)}"
        )
