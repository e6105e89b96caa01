"""Helpers for frontend tests and benchmarks: routes files, frontends, metrics.

* ``route`` / ``write_routes`` -- a static routing table as the frontend reads it;
* ``serving`` -- a real ``Frontend`` in this process on ephemeral ports (for
  white-box checks on the test's own event loop), ready when its apps are;
* ``FrontendProcess`` -- ``clipper frontend`` as a child process (signals, exit
  codes, the benchmark);
* ``start_model_servers`` -- several model containers started side by side;
* ``metric`` -- one value out of a Prometheus exposition;
* ``same_predictions`` -- served predictions against in-process ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import urllib.request
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families

from clipper.testing.model_servers import ModelServer, serve_command
from clipper.testing.processes import ClipperProcess, ProcessExited, wait_for
from clipper.testing.timeouts import scaled


def route(
    name: str,
    models: Mapping[str, Sequence[str] | Sequence[Mapping[str, Any]]],
    **fields: Any,
) -> dict[str, Any]:
    """One app of a routing table. ``models`` maps a model name to its replica
    addresses (version "1"), or to a list of versions (``{"version", "weight",
    "replicas"}``). ``batching={model: {...}}`` sets per-model batching; other
    ``fields`` are ``AppConfig`` fields (``latency_slo_ms``, ``selection``, ...)."""
    batching = fields.pop("batching", {})
    entries = []
    for model, spec in models.items():
        if spec and isinstance(spec[0], Mapping):
            versions = [dict(v) for v in spec]  # type: ignore[arg-type]
        else:
            versions = [{"version": "1", "replicas": list(spec)}]
        entry: dict[str, Any] = {"name": model, "versions": versions}
        if model in batching:
            entry["batching"] = batching[model]
        entries.append(entry)
    return {"name": name, "models": entries, **fields}


def write_routes(path: Path, *apps: Mapping[str, Any]) -> Path:
    """Write (atomically, as an editor would) a routes file with ``apps``."""
    path = Path(path)
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(yaml.safe_dump({"apps": {app["name"]: dict(app) for app in apps}}))
    staged.replace(path)
    return path


@dataclass
class Serving:
    """A frontend running in this process."""

    frontend: Any  # clipper.frontend.runtime.Frontend
    url: str
    grpc_address: str

    async def wait_ready(self, within_s: float = 60.0) -> None:
        """Until every app has a replica up (health checked, metadata read) and every
        replica has had its first health check; ``within_s`` in quiet-machine seconds
        (scaled).

        Why the second half: an app is ready with one model up, and a test that asks
        an ensemble at once, or stops a model and waits to see it down, must not race
        the other replicas' first checks (availability-aware selection skips a model
        that is not up yet; a check in flight may mark a stopped model up)."""
        limit = scaled(within_s)
        deadline = time.monotonic() + limit
        while not self.frontend.plane.ready or self.starting():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"timed out after {limit:.1f}s waiting for the frontend ready; "
                    f"last seen: plane.ready={self.frontend.plane.ready!r}, "
                    f"replicas not yet checked: {self.starting()}"
                )
            await asyncio.sleep(0.05)

    def starting(self) -> list[str]:
        """Model versions with a replica not health-checked yet."""
        return [
            version.name
            for app in self.frontend.router.apps.values()
            for model in app.models.values()
            for version, _ in model.versions
            if version.starting
        ]

    def metrics(self) -> str:
        return str(self.frontend.metrics.exposition().decode())


@contextlib.asynccontextmanager
async def serving(routes: Path, ready: bool = True, **settings: Any) -> AsyncIterator[Serving]:
    """A ``Frontend`` on ephemeral ports of 127.0.0.1, stopped on exit."""
    from clipper.frontend.runtime import Frontend
    from clipper.frontend.settings import FrontendSettings

    values = {"http_port": 0, "grpc_port": 0, "health_interval_s": 0.2, **settings}
    frontend = Frontend(FrontendSettings(routes=routes, **values))
    await frontend.start()
    try:
        handle = Serving(
            frontend,
            f"http://127.0.0.1:{frontend.rest.port}",
            f"127.0.0.1:{frontend.grpc.port}",
        )
        if ready:
            await handle.wait_ready()
        yield handle
    finally:
        await frontend.stop()


WORKER_STARTED = re.compile(r"frontend worker (\d+) started \(pid (\d+)\)")
"""What a ``--workers`` supervisor logs per start: the worker's index and pid."""


def worker_running(pid: int) -> bool:
    """Whether ``pid`` is a frontend worker still running (not a reused pid, not a zombie)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"--worker-group" in cmdline and state != "Z"


_SERVING = re.compile(r"frontend serving REST on \S+:(\d+) and gRPC on \S+:(\d+)")


class FrontendProcess:
    """``clipper frontend`` as a child process on ports 0: it binds free ones and
    logs them (``frontend serving REST on HOST:PORT and gRPC on HOST:PORT``), and
    ``wait_ready`` reads them from there, so no port is picked first and raced for.
    ``url`` and ``grpc_address`` are known once ``wait_ready`` returns."""

    def __init__(self, routes: Path, args: Sequence[str] = (), env: dict[str, str] | None = None):
        self.http_port = self.grpc_port = 0
        self.url = self.grpc_address = ""
        command = ["frontend", "--routes", str(routes), "--http-port", "0", "--grpc-port", "0"]
        self.process = ClipperProcess([*command, *args], env=env)

    def wait_ready(self, timeout: float = 90.0) -> FrontendProcess:
        self._wait_listening(timeout)

        def ready() -> bool:
            if not self.process.alive():
                raise ProcessExited(f"frontend exited:\n{self.process.logs()}")
            with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2) as answer:
                return bool(json.loads(answer.read())["ready"])

        try:
            wait_for(ready, timeout=timeout, interval=0.1, what="frontend ready")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- logs ---\n{self.process.logs()}") from None
        return self

    def _wait_listening(self, timeout: float) -> None:
        def listening() -> re.Match[str] | None:
            if not self.process.alive():
                raise ProcessExited(f"frontend exited:\n{self.process.logs()}")
            return _SERVING.search(self.process.logs())

        try:
            match = wait_for(listening, timeout=timeout, what="frontend ports")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- logs ---\n{self.process.logs()}") from None
        self.http_port, self.grpc_port = int(match.group(1)), int(match.group(2))
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.grpc_address = f"127.0.0.1:{self.grpc_port}"

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=scaled(10)) as answer:
            return str(answer.read().decode())

    def stop(self, timeout: float = 30.0) -> int:
        return self.process.stop(timeout)

    def __enter__(self) -> FrontendProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_model_servers(
    specs: Sequence[Mapping[str, Any]], timeout: float = 120.0
) -> list[ModelServer]:
    """Start several model containers at once; each spec holds ``ModelServer.start``'s
    arguments (``framework``, ``uri``, ``name``, ``args``, ``env``), and may fix the
    ``port`` (to bring a killed replica back where the frontend expects it); else
    each binds a free port and reports it."""
    servers = []
    try:
        for spec in specs:
            command = serve_command(
                spec["framework"],
                spec["name"],
                spec.get("uri", ""),
                spec.get("args", ()),
                port=spec.get("port", 0),
            )
            process = ClipperProcess(command, env=spec.get("env"))
            servers.append(ModelServer(process, spec["name"]))
        for server in servers:
            server.wait_listening(timeout)
            server.wait_ready(timeout)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def post_json(url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST ``body`` as JSON and read the JSON answer (an HTTPError past a 4xx/5xx)."""
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as answer:
        loaded: dict[str, Any] = json.loads(answer.read())
        return loaded


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def same_predictions(actual: object, expected: np.ndarray) -> None:
    """Same classes, same probabilities up to float rounding: BLAS may sum a row in a
    batch of 25 in another order than the same row in a batch the frontend formed."""
    actual = np.asarray(actual)
    np.testing.assert_array_equal(actual.argmax(axis=-1), expected.argmax(axis=-1))
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-15)


async def hammer(
    url: str,
    app: str,
    rows: Sequence[Sequence[float]],
    concurrency: int,
    path: str = "predict",
) -> list[tuple[int, dict[str, Any]]]:
    """POST each row as ``{"input": row}`` to ``/{app}/{path}`` from ``concurrency``
    clients at once; every ``(status, answer)``, in the order of ``rows``."""
    import aiohttp

    results: list[tuple[int, dict[str, Any]]] = [(0, {})] * len(rows)
    next_row = iter(range(len(rows)))

    async def client(session: aiohttp.ClientSession) -> None:
        for i in next_row:
            async with session.post(f"{url}/{app}/{path}", json={"input": list(rows[i])}) as r:
                results[i] = (r.status, await r.json())

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return results
