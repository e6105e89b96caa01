"""A real ``redis-server`` (Debian's package) on 127.0.0.1, for the state tests.

``make redis`` installs it with apt-get when absent (``make test`` depends on it,
so ``.ci/run`` has it). A missing binary skips the tests that need it with that
command, except under ``CI=true``, where it fails. The server runs on a free port
with no persistence, its files in a temporary folder removed with it, and is
stopped at the end even when a test failed. ``stop`` and ``start`` on the same
port let a test take Redis away and bring it back.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from clipper.testing.k8s_install import require_build
from clipper.testing.processes import free_port, port_open, wait_for


class RedisServer:
    def __init__(self, binary: Path, workdir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            str(self.binary),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / "redis.log"),
        ]
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), 15.0, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        """Stop it (SIGKILL: what a crashed or unreachable Redis looks like)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None

    def flush(self) -> None:
        """Forget every key (between tests sharing the server)."""
        import redis

        with redis.Redis(port=self.port) as client:
            client.flushall()


def require_redis() -> Path:
    found = shutil.which("redis-server")
    why = "redis-server is not on PATH"
    return require_build(Path(found) if found else None, why, "redis-server", "redis")


@contextlib.contextmanager
def redis_server(binary: Path) -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="clipper-redis-") as workdir:
        server = RedisServer(binary, Path(workdir))
        try:
            server.start()
            yield server
        finally:
            server.stop()
