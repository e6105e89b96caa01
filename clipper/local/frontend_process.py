"""The frontend of a ``clipper run``: ``clipper frontend --routes FILE`` as a child.

One frontend serves every app of the run (in a cluster each ClipperApp gets its
own; locally one process on one pair of ports is what a laptop wants). It reads
the routes file the runner writes and reloads it on every change, so the runner
never talks to it directly. Its REST port is a listening socket the run holds
and passes down (``--http-fd``), so connections wait in its backlog while one
frontend replaces another; its gRPC port is bound with SO_REUSEPORT
(``--grpc-reuse-port``) so a replacement listens beside a draining one. With gRPC
port 0 the port is read back from its ``frontend serving REST on ... and gRPC on
...`` log line. Readiness (``/v2/health/ready``: every app has a model up) is polled, by a
supervised task (``clipper.common.tasks``): if the poll dies of a bug, its traceback
is logged, the frontend counts as neither live nor ready until the poll runs again,
and it is restarted. A routes file the frontend rejects (it keeps the previous one)
is read from its log line, for ``clipper status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp

from clipper.common.tasks import Supervised, TaskRegistry, supervise
from clipper.local.health import http_ready
from clipper.local.process import LogSink, Process

_SERVING = re.compile(r"frontend serving REST on (\S+):(\d+) and gRPC on (\S+):(\d+)")
_REJECTED = re.compile(r"routing table rejected, the previous one stays: (.*)$")
_APPLIED = "routing table applied:"
POLL_S = 0.25


class FrontendProcess:
    """The frontend child: its ports, whether it is live and ready."""

    def __init__(
        self,
        sink: LogSink,
        routes: Path,
        http: socket.socket,
        grpc_port: int,
        global_args: tuple[str, ...],
        changed: Callable[[], None],
        tasks: TaskRegistry | None = None,
        flags: Sequence[str] = (),
    ) -> None:
        self.host, self.http_port = http.getsockname()[:2]
        self.grpc_port = grpc_port
        self.flags = list(flags)
        """The flags from the ClipperApp (``clipper.common.frontend_args``)."""
        args = [*global_args, "frontend", "--routes", str(routes), "--host", self.host]
        args += ["--http-fd", str(http.fileno()), "--grpc-port", str(grpc_port)]
        args += ["--grpc-reuse-port", "true", *self.flags]
        command = [sys.executable, "-m", "clipper", *args]
        self.process = Process("frontend", command, sink, tasks=tasks, pass_fds=[http.fileno()])
        self.process.watchers += [self._find_ports, self._find_verdict]
        self.rejected: str | None = None
        """Why the frontend rejected the last routes file (it serves the one before)."""
        self.listening = asyncio.Event()
        self.live = False
        self.ready = False
        self._changed = changed
        self._tasks = tasks
        self._poll: Supervised | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{host}:{self.grpc_port}"

    async def start(self) -> None:
        await self.process.start()
        self._poll = supervise(
            "frontend: health poll", self._watch, registry=self._tasks, on_crash=self._lost
        )

    async def stop(self, grace_s: float, signum: int = signal.SIGTERM) -> None:
        """SIGTERM drains (``drainDelaySeconds``, then in-flight requests); SIGINT skips
        the drain delay (the run's own shutdown: nothing else will take the traffic)."""
        if self._poll is not None:
            await self._poll.stop()
        await self.process.stop(grace_s, signum)

    def _lost(self, _: BaseException) -> None:
        """The poll died: what it last saw is no longer known."""
        self.live = self.ready = False

    def _find_ports(self, line: str) -> None:
        match = _SERVING.search(line)
        if match and not self.listening.is_set():
            self.http_port, self.grpc_port = int(match.group(2)), int(match.group(4))
            self.listening.set()
            self._changed()

    def _find_verdict(self, line: str) -> None:
        if match := _REJECTED.search(line):
            self.rejected = match.group(1)
        elif _APPLIED in line:
            self.rejected = None

    async def _watch(self) -> None:
        async with aiohttp.ClientSession() as session:
            while not self.process.exited.is_set():
                if self.listening.is_set():
                    state = await http_ready(session, self.url)
                    if state[0]:
                        self.process.mark_healthy()
                    if state != (self.live, self.ready):
                        self.live, self.ready = state
                        self._changed()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.process.exited.wait(), POLL_S)
        self.live = self.ready = False
        self._changed()
