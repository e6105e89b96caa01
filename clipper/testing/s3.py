"""A real S3-compatible server (SeaweedFS) on 127.0.0.1, for the storage tests.

``scripts/build-s3-server.sh`` builds ``weed`` into a cache named after the version
pinned in ``scripts/s3server.env``; this module reads the same file. A missing build
skips the tests that need it, with the command that builds it, except under
``CI=true``, where it fails (a CI run that skipped the S3 tests must not look green).

The server runs ``weed server -s3`` with every port chosen free on 127.0.0.1 and one
identity (``ACCESS_KEY``/``SECRET_KEY``), so a wrong key is refused as it would be
by a real store. Its data lives in a temporary folder removed with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipper.testing.k8s_install import REPO_ROOT, cache_root, read_versions, require_build
from clipper.testing.processes import ProcessExited, free_port, port_open, wait_for

VERSIONS_FILE = REPO_ROOT / "scripts" / "s3server.env"
ACCESS_KEY = "clipper-test"
SECRET_KEY = "clipper-test-secret"
REGION = "us-east-1"


def weed_binary() -> tuple[Path | None, str]:
    """The cached ``weed``, or ``None`` and why it is not usable."""
    version = read_versions(VERSIONS_FILE)["SEAWEEDFS_VERSION"]
    dest = cache_root() / f"seaweedfs-{version}"
    stamp = dest / "STAMP"
    if not stamp.is_file() or stamp.read_text().strip() != f"seaweedfs={version}":
        return None, f"no build of seaweedfs {version} in {dest}"
    if not os.access(dest / "bin" / "weed", os.X_OK):
        return None, f"{dest / 'bin' / 'weed'} is missing"
    return dest / "bin" / "weed", ""


def require_weed() -> Path:
    """The cached ``weed``; else skip the test, or fail it under ``CI=true``."""
    weed, why = weed_binary()
    return require_build(weed, why, "the test S3 server", "s3server")


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    """``http://127.0.0.1:PORT``"""

    def env(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict[str, str]:
        """The environment a client needs to reach this server (``clipper model fetch``)."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
        }

    def client(self) -> Any:
        from minio import Minio

        host = self.endpoint.removeprefix("http://")
        return Minio(host, ACCESS_KEY, SECRET_KEY, region=REGION, secure=False)

    def put(self, bucket: str, key: str, path: Path) -> None:
        client = self.client()
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        client.fput_object(bucket, key, str(path))


def _identities(path: Path) -> None:
    identity = {
        "name": "clipper-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}))


def _bucket_ready(server: S3Server) -> bool:
    """The S3 gateway answers, and the filer behind it accepts a bucket."""
    client = server.client()
    if not client.bucket_exists("ready-check"):
        client.make_bucket("ready-check")
    return True


@contextlib.contextmanager
def s3_server(weed: Path, timeout: float = 120.0) -> Iterator[S3Server]:
    """``weed server -s3`` on free 127.0.0.1 ports; stopped (and its data removed) after."""
    with tempfile.TemporaryDirectory(prefix="clipper-s3-") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        _identities(work / "s3.json")
        ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        args = [
            "server",
            f"-dir={work / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={grpc['volume']}",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={grpc['filer']}",
            "-s3",
            f"-s3.port={ports['s3']}",
            f"-s3.port.grpc={grpc['s3']}",
            f"-s3.config={work / 's3.json'}",
            "-s3.port.iceberg=0",  # off: their fixed default ports would clash
            "-s3.port.lance=0",
            "-volume.max=64",  # each bucket grows its own volumes: 4 ran out at the third bucket
            "-master.volumeSizeLimitMB=64",
        ]
        log_path = work / "weed.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(weed), *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = S3Server(f"http://127.0.0.1:{ports['s3']}")
        try:
            wait_for(lambda: _up(proc, ports["s3"], log_path), timeout=timeout, what="the S3 port")
            wait_for(lambda: _bucket_ready(server), timeout=timeout, what="an S3 bucket")
            yield server
        finally:
            _stop(proc)


def _up(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> bool:
    if proc.poll() is not None:
        raise ProcessExited(f"weed exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
    return port_open(port)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
