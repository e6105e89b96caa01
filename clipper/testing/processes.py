"""Start real ``clipper`` processes for tests and benchmarks, and always reap them.

Every process gets its own log file; ``ClipperProcess.logs()`` returns it so a
failing test can show what the server said. Processes start in their own session
so that stopping one also stops anything it spawned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from clipper.testing.diagnostics import REGISTRY
from clipper.testing.timeouts import scaled
from clipper.testing.waiting import ProcessExited as ProcessExited
from clipper.testing.waiting import wait_for as wait_for

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now -- and may be taken by anyone
    a moment later. Only for processes that must be told their port in advance and
    cannot bind 0 and report it (the Kubernetes control plane's binaries, a local
    mode manifest's ports); servers of this project bind 0 and log the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 where connections are refused for as long as the block
    runs: it is bound (so no one else can listen there) but never listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class ClipperProcess:
    """``python -m clipper ARGS`` as a child process with its output in a log file."""

    def __init__(
        self,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.args = [sys.executable, "-m", "clipper", *args]
        log_dir = log_dir or Path(tempfile.mkdtemp(prefix="clipper-proc-"))
        self.log_path = (
            log_dir / f"{'-'.join(args[:2]).replace('/', '_')}-{os.getpid()}-{id(self)}.log"
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        REGISTRY.add_process(self)  # its log goes into the report of a failing test

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logs(self) -> str:
        if not self._log.closed:  # after stop() the file is closed and complete
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def returncode(self) -> int | None:
        """The exit code, or ``None`` while it runs."""
        return self.proc.poll()

    def signal(self, signum: int) -> None:
        if self.alive():
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit code, once it exits within ``timeout`` quiet-machine seconds (scaled)."""
        return self.proc.wait(timeout=scaled(timeout))

    def wait_port(self, port: int, timeout: float = 60.0) -> None:
        """Wait until the process listens on ``port``; fail early if it exits."""

        def ready() -> bool:
            if not self.alive():
                raise ProcessExited(
                    f"{' '.join(self.args)} exited with {self.proc.returncode}:\n{self.logs()}"
                )
            return port_open(port)

        try:
            wait_for(ready, timeout=timeout, what=f"port {port}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- logs ---\n{self.logs()}") from None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL the whole process group after ``timeout`` (scaled)."""
        timeout = scaled(timeout)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM for %.0fs; killing it", self.args, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its group
        self._log.close()
        return self.proc.returncode


@contextlib.contextmanager
def clipper_process(args: Sequence[str], **kwargs: object) -> Iterator[ClipperProcess]:
    proc = ClipperProcess(args, **kwargs)  # type: ignore[arg-type]
    try:
        yield proc
    finally:
        proc.stop()
