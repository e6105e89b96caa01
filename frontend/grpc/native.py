"""The gRPC port served by the native front: ``clipper-grpc-front`` (``front/``, Go).

``--grpc-server native`` runs the front as this frontend's child and serves its
calls over a Unix socket (``bridge.py``); ``auto`` (the default) does so when the
program is installed (``make`` builds it into the virtualenv; the ``clipper``
image has it) and otherwise serves with ``grpc.aio`` (``server.py``), saying so
in the log. Both serve the same API with the same answers and errors; the front
is 2-4x cheaper per call (docs/architecture.md, "Native gRPC front").

The front lives and dies with this process:

* it connects to the link before it listens, and prints the address it bound,
  which is how port 0 becomes the port this frontend reports;
* it exits when the link closes, so a frontend that dies, however it died, leaves
  no front holding its port;
* a front that dies is logged with its exit status and restarted
  (``clipper.common.tasks.supervise``, back-off 0.5 s doubling to 30 s) on the same
  port; calls it had in flight fail UNAVAILABLE (a client retries them), and the
  REST port serves on meanwhile;
* drain and stop are frames on the link: NOT_SERVING in ``grpc.health.v1`` while
  the drain delay runs, then no new calls, streams answer what they read and end
  UNAVAILABLE, and calls in flight get the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from clipper.common.errors import ConfigError
from clipper.common.tasks import Backoff, Supervised, TaskRegistry, supervise
from clipper.frontend.dataplane import DataPlane
from clipper.frontend.grpc.bridge import Link, drain_frame, stop_frame
from clipper.frontend.grpc.server import GrpcLimits
from clipper.frontend.grpc.servicer import InferenceServicer
from clipper.frontend.metrics import Metrics
from clipper.frontend.workers.supervisor import describe_exit

log = logging.getLogger(__name__)

PROGRAM = "clipper-grpc-front"
ENV = "CLIPPER_GRPC_FRONT"
"""A path to the program, to use instead of the one found beside the interpreter or on
the PATH."""
START_TIMEOUT_S = 10.0
STOP_MARGIN_S = 5.0
"""How long past the grace period a stopping front may take before it is killed."""
RESTART_BACKOFF = Backoff(first_s=0.5, max_s=30.0, healthy_after_s=30.0)


class FrontExited(Exception):
    """The native gRPC front exited while nobody asked it to."""


def find_front() -> Path | None:
    """The program: ``$CLIPPER_GRPC_FRONT``, else beside this interpreter (a virtualenv's
    or the image's ``bin``), else on the PATH; None if it is in neither place.

    ``ConfigError`` if ``$CLIPPER_GRPC_FRONT`` names no executable file: whoever set it
    wants that program, not a quiet fallback."""
    configured = os.environ.get(ENV)
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise ConfigError(f"${ENV}={configured} is not an executable file")
        return Path(configured)
    beside = Path(sys.executable).parent / PROGRAM
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(PROGRAM)
    return None if found is None else Path(found)


class NativeGrpcServer:
    """``GrpcServer``'s interface (``start``, ``drain``, ``stop``, ``port``), served by
    the front."""

    def __init__(
        self,
        program: Path,
        plane: DataPlane,
        metrics: Metrics,
        host: str,
        port: int,
        max_message_bytes: int,
        limits: GrpcLimits,
        reuse_port: bool,
        tasks: TaskRegistry,
        worker: bool = False,
    ) -> None:
        self.program = program
        self.host, self.port = host, port
        self._limits = limits
        self._max_message_bytes = max_message_bytes
        self._reuse_port = reuse_port
        self._tasks = tasks
        self._env: dict[str, str] | None = None
        if worker and "GOMAXPROCS" not in os.environ:
            # One worker is one core's share of the pod: its front runs on one OS thread
            # at a time too, rather than as many as the node has cores.
            self._env = {**os.environ, "GOMAXPROCS": "1"}
        metrics.grpc_max_concurrent_rpcs.set(limits.max_concurrent_rpcs)
        self._servicer = InferenceServicer(plane, metrics, limits.stream_max_inflight)
        self._address = f"\0clipper-grpc-front-{os.getpid()}-{secrets.token_hex(4)}"
        self._server: asyncio.AbstractServer | None = None
        self._links: set[Link] = set()
        self._process: Front | None = None
        self._keeper: Supervised | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """The running front's process id (None while it is being restarted)."""
        return None if self._process is None else self._process.pid

    def command(self) -> list[str]:
        limits = self._limits
        return [
            str(self.program),
            *("--listen", _join(self.host, self.port)),
            f"--reuse-port={'true' if self._reuse_port else 'false'}",
            *("--backend", "@" + self._address[1:]),
            *("--max-message-bytes", str(self._max_message_bytes)),
            *("--max-concurrent-rpcs", str(limits.max_concurrent_rpcs)),
            *("--handshake-timeout", f"{limits.handshake_timeout_s}s"),
            *("--idle-timeout", f"{limits.idle_timeout_s}s"),
            *("--stream-max-inflight", str(limits.stream_max_inflight)),
        ]

    async def start(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self._address)  # abstract: no file to clean up, gone with the process
        listener.listen()
        self._server = await asyncio.get_running_loop().create_unix_server(
            self._link, sock=listener
        )
        await self._launch()
        self._keeper = supervise(
            "grpc_front", self._keep, registry=self._tasks, backoff=RESTART_BACKOFF
        )

    def _link(self) -> Link:
        link = Link(self._servicer, self._links.discard)
        self._links.add(link)
        return link

    async def _launch(self) -> None:
        """Start the front; return once it listens (its port is then ``self.port``)."""
        front = await Front.spawn(self.command(), self._env)
        try:
            line = await asyncio.wait_for(front.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if not line.startswith(b"clipper-grpc-front listening on "):
            front.kill()
            code = await front.exited
            raise ConfigError(
                f"the native gRPC front ({self.program}) did not start ({describe_exit(code)}); "
                "its reason is logged above. Use --grpc-server python to serve gRPC "
                "without it"
            )
        self.port = int(line.rsplit(b":", 1)[1])
        self._process = front
        log.info("gRPC served by %s (pid %d) on port %d", PROGRAM, front.pid, self.port)

    async def _keep(self) -> None:
        """Wait for the front to exit; if nobody asked it to, fail (and be restarted)."""
        if self._process is None:
            await self._launch()
        front = self._process
        assert front is not None
        code = await asyncio.shield(front.exited)
        self._process = None
        if self._stopping:
            return
        raise FrontExited(f"{PROGRAM} (pid {front.pid}) {describe_exit(code)}")

    async def drain(self) -> None:
        """NOT_SERVING in grpc.health.v1, while still serving."""
        for link in self._links:
            link.send(drain_frame())

    async def stop(self, grace_s: float) -> None:
        """No new calls; streams answer what they read and end UNAVAILABLE; calls in
        flight get ``grace_s``; then the front exits."""
        self._stopping = True
        self._servicer.streams.close()
        front = self._process
        if front is not None:
            for link in self._links:
                link.send(stop_frame(grace_s))
            try:
                await asyncio.wait_for(asyncio.shield(front.exited), grace_s + STOP_MARGIN_S)
            except TimeoutError:
                log.error("%s did not stop within %gs; killing it", PROGRAM, grace_s)
                front.kill()
                await front.exited
        if self._keeper is not None:
            await self._keeper.stop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Front:
    """The front as a child process, started without ``fork``.

    ``subprocess`` starts it with ``posix_spawn`` (``close_fds=False``: this process's
    own descriptors are not inheritable anyway), which runs no ``pthread_atfork``
    handlers: gRPC's (its client channels to the model containers live in this
    process) would otherwise run at each start, while their threads are mid-call.
    asyncio's subprocess support forks (uvloop's always), so the start is done here,
    and the exit is watched through a pidfd, with no thread.
    """

    def __init__(self, process: subprocess.Popen[bytes], stdout: asyncio.StreamReader) -> None:
        self._process = process
        self.pid = process.pid
        self.stdout = stdout
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @classmethod
    async def spawn(cls, command: list[str], env: dict[str, str] | None) -> Front:
        process = subprocess.Popen(  # noqa: ASYNC220 - posix_spawn: returns at once
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            close_fds=False,
            env=env,
        )
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        assert process.stdout is not None
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), process.stdout
        )
        front = cls(process, reader)
        front._watch(transport)
        return front

    def _watch(self, pipe: asyncio.BaseTransport) -> None:
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(self.pid)

        def reap() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            pipe.close()
            if not self.exited.done():
                self.exited.set_result(self._process.wait())

        loop.add_reader(pidfd, reap)

    def kill(self) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
