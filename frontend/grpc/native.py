"""The gRPC port served by the native front: ``clipper-grpc-front`` (``front/``, Go).

``--grpc-server native`` serves gRPC through the front: it terminates HTTP/2 and
gRPC and relays each call's raw message to a frontend process over a Unix socket
(``bridge.py``); ``auto`` (the default) does so when the program is installed
(``make`` builds it into the virtualenv; the ``clipper`` image has it) and
otherwise serves with ``grpc.aio`` (``server.py``), saying so in the log. Both
serve the same API with the same answers and errors; the front costs a fraction
per call (docs/architecture.md, "Native gRPC front").

One front per pod:

* a single frontend (``NativeGrpcServer``) listens on a link and runs its own front;
* with ``--workers N`` each worker only listens on its link (``WorkerLink``, at an
  address its supervisor knows), and the supervisor runs one front for all of them
  (``FrontRunner``, from ``workers/supervisor.py``), which hands every call, and
  every request of a stream, to the worker with the fewest unanswered requests: one
  gRPC channel uses every worker.

The front lives and dies with the process that runs it (``FrontRunner``):

* it starts with ``posix_spawn`` (``Front``), prints the address it bound (how port
  0 becomes the port this frontend reports), and gets SIGTERM if its parent dies;
* a front that dies is logged with its exit status and restarted
  (``clipper.common.tasks.supervise``, back-off 0.5 s doubling to 30 s) on the same
  port; calls it had in flight fail UNAVAILABLE (a client retries them), and the
  REST port serves on meanwhile;
* drain and stop are signals: SIGUSR1 is NOT_SERVING in ``grpc.health.v1`` while
  still serving (the drain delay); SIGTERM stops: no new calls, streams answer what
  they read and end UNAVAILABLE, calls in flight get the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from clipper.common.errors import ConfigError
from clipper.common.routing import host_port
from clipper.common.tasks import Backoff, Supervised, TaskRegistry, describe_exit, supervise
from clipper.frontend.dataplane import DataPlane
from clipper.frontend.grpc.bridge import Link
from clipper.frontend.grpc.server import GrpcLimits
from clipper.frontend.grpc.servicer import InferenceServicer
from clipper.frontend.metrics import Metrics

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


def front_program(choice: str) -> Path | None:
    """The front to run for ``--grpc-server choice``, or None: serve with grpc.aio
    (python; or auto without the program, said in the log). ``ConfigError`` for
    native without it."""
    if choice == "python":
        return None
    program = find_front()
    if program is None and choice == "native":
        raise ConfigError(
            f"--grpc-server native: {PROGRAM} is not installed (beside {sys.executable}, "
            f"on the PATH or at ${ENV}); build it with `make grpc-front`, or use "
            "--grpc-server python"
        )
    if program is None:
        log.warning(
            "gRPC served by grpc.aio: %s is not installed (build it with `make grpc-front`); "
            "the native front serves 2-4x more calls per core",
            PROGRAM,
        )
    return program


def worker_link_address(group: str, index: int) -> str:
    """Where worker ``index`` of ``group`` listens for the front (abstract: no file)."""
    return f"\0clipper-frontend-{group}-{index}-grpc"


class LinkServer:
    """A frontend process's end of the links: accepts the front's connections and
    answers them through an ``InferenceServicer`` of its own."""

    def __init__(
        self, plane: DataPlane, metrics: Metrics, limits: GrpcLimits, address: str
    ) -> None:
        self.address = address
        metrics.grpc_max_concurrent_rpcs.set(limits.max_concurrent_rpcs)
        self._servicer = InferenceServicer(plane, metrics, limits.stream_max_inflight)
        self._server: asyncio.AbstractServer | None = None
        self._links: set[Link] = set()
        metrics.grpc_front_links.set_function(lambda: len(self._links))

    async def start(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.address)  # abstract: no file to clean up, gone with the process
        listener.listen()
        self._server = await asyncio.get_running_loop().create_unix_server(
            self._link, sock=listener
        )

    def _link(self) -> Link:
        link = Link(self._servicer, self._links.discard)
        self._links.add(link)
        return link

    async def stop(self, wait_s: float) -> None:
        """No new links; wait up to ``wait_s`` for the front to end the open ones (it
        does once its calls are answered), then close them."""
        if self._server is None:
            return
        self._server.close()
        links = [link.closed.wait() for link in self._links]
        if links:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*links), wait_s)


class FrontRunner:
    """Runs the front for ``backends`` (link addresses) and keeps it running."""

    def __init__(
        self,
        program: Path,
        backends: list[str],
        host: str,
        port: int,
        max_message_bytes: int,
        limits: GrpcLimits,
        grace_s: float,
        reuse_port: bool,
        tasks: TaskRegistry,
    ) -> None:
        self.program = program
        self.host, self.port = host, port
        self._backends = backends
        self._max_message_bytes = max_message_bytes
        self._limits = limits
        self._grace_s = grace_s
        self._reuse_port = reuse_port
        self._tasks = tasks
        self._front: Front | None = None
        self._keeper: Supervised | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """The running front's process id (None while it is being restarted)."""
        return None if self._front is None else self._front.pid

    @property
    def task(self) -> asyncio.Task[None]:
        """The task that keeps the front running; done once it has stopped for good."""
        assert self._keeper is not None, "start() first"
        return self._keeper.task

    def command(self) -> list[str]:
        limits = self._limits
        return [
            str(self.program),
            *("--listen", host_port(self.host, self.port)),
            f"--reuse-port={'true' if self._reuse_port else 'false'}",
            *("--backend", ",".join("@" + address[1:] for address in self._backends)),
            *("--parent", str(os.getpid())),
            *("--max-message-bytes", str(self._max_message_bytes)),
            *("--max-concurrent-rpcs", str(limits.max_concurrent_rpcs)),
            *("--handshake-timeout", f"{limits.handshake_timeout_s}s"),
            *("--idle-timeout", f"{limits.idle_timeout_s}s"),
            *("--stream-max-inflight", str(limits.stream_max_inflight)),
            *("--grace-period", f"{self._grace_s}s"),
        ]

    async def start(self) -> None:
        """Start the front (``ConfigError`` if it does not), then keep it running."""
        await self._launch()
        self._keeper = supervise(
            "grpc_front", self._keep, registry=self._tasks, backoff=RESTART_BACKOFF
        )

    async def _launch(self) -> None:
        front = await Front.spawn(self.command())
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
        self._front = front
        log.info("gRPC served by %s (pid %d) on port %d", PROGRAM, front.pid, self.port)

    async def _keep(self) -> None:
        """Wait for the front to exit; if nobody asked it to, fail (and be restarted)."""
        if self._front is None:
            await self._launch()
        front = self._front
        assert front is not None
        code = await asyncio.shield(front.exited)
        self._front = None
        if self._stopping:
            return
        raise FrontExited(f"{PROGRAM} (pid {front.pid}) {describe_exit(code)}")

    def drain(self) -> None:
        """NOT_SERVING in grpc.health.v1, while still serving."""
        if self._front is not None:
            self._front.signal(signal.SIGUSR1)

    async def stop(self) -> None:
        """No new calls; streams answer what they read and end UNAVAILABLE; calls in
        flight get the grace period; then the front exits (killed if it has not
        ``STOP_MARGIN_S`` later)."""
        self._stopping = True
        front = self._front
        if front is not None:
            front.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(front.exited), self._grace_s + STOP_MARGIN_S)
            except TimeoutError:
                log.error("%s did not stop within %gs; killing it", PROGRAM, self._grace_s)
                front.kill()
                await front.exited
        if self._keeper is not None:
            await self._keeper.stop()


class NativeGrpcServer:
    """A single frontend's gRPC port: its link and its own front (``GrpcServer``'s
    interface: ``start``, ``drain``, ``stop``, ``port``)."""

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
        grace_s: float,
    ) -> None:
        address = f"\0clipper-grpc-front-{os.getpid()}-{secrets.token_hex(4)}"
        self._links = LinkServer(plane, metrics, limits, address)
        self.front = FrontRunner(
            program,
            [address],
            host,
            port,
            max_message_bytes,
            limits,
            grace_s,
            reuse_port,
            tasks,
        )

    @property
    def port(self) -> int:
        return self.front.port

    async def start(self) -> None:
        await self._links.start()
        await self.front.start()

    async def drain(self) -> None:
        self.front.drain()

    async def stop(self, grace_s: float) -> None:
        await self.front.stop()
        await self._links.stop(0)


class WorkerLink:
    """A worker's gRPC port under ``--workers``: only its link; its supervisor runs the
    front on the shared port (``GrpcServer``'s interface)."""

    def __init__(
        self,
        plane: DataPlane,
        metrics: Metrics,
        port: int,
        limits: GrpcLimits,
        group: str,
        index: int,
    ) -> None:
        self.port = port
        self._links = LinkServer(plane, metrics, limits, worker_link_address(group, index))

    async def start(self) -> None:
        await self._links.start()

    async def drain(self) -> None:
        """The supervisor drains the front."""

    async def stop(self, grace_s: float) -> None:
        """Answer what the front sends until it stops (the supervisor stops it)."""
        await self._links.stop(grace_s + STOP_MARGIN_S)


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
        self._waiter: asyncio.Future[int] | None = None

    @classmethod
    async def spawn(cls, command: list[str]) -> Front:
        process = subprocess.Popen(  # noqa: ASYNC220 - posix_spawn: returns at once
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            close_fds=False,
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

        def reaped(code: int) -> None:
            pipe.close()
            if not self.exited.done():
                self.exited.set_result(code)

        try:
            pidfd = os.pidfd_open(self.pid)
        except OSError:  # a kernel before 5.3, or a seccomp profile without it: a thread waits
            self._waiter = asyncio.ensure_future(asyncio.to_thread(self._process.wait))
            self._waiter.add_done_callback(lambda done: reaped(done.result()))
            return

        def reap() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            reaped(self._process.wait())

        loop.add_reader(pidfd, reap)

    def signal(self, signum: signal.Signals) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
