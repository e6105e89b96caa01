"""Helpers for local-mode tests: manifests, a ``clipper run`` child, a load loop.

* ``model_deployment`` / ``clipper_app`` / ``write_manifests`` -- manifests as
  dicts, written as YAML the way a user would;
* ``LocalRun`` -- ``clipper run`` as a child process with its own run folder
  (``CLIPPER_CACHE_DIR``), its status through the control API, ``clipper apply``
  as the user runs it;
* ``LoadLoop`` -- a bounded, constant load on an app's ``/predict`` from a few
  threads, counting every request and every failure (an error status *or* a
  default answer: an app that answers its default has not served a prediction).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from clipper.testing.frontend import post_json
from clipper.testing.processes import ClipperProcess, ProcessExited, wait_for
from clipper.testing.timeouts import scaled

SERVING_BANNER = "clipper run: serving"


def model_deployment(
    name: str, version: str, framework: str, uri: str | None = None, **spec: Any
) -> dict[str, Any]:
    """A ModelDeployment manifest; ``spec`` adds fields (camelCase, as in YAML)."""
    body: dict[str, Any] = {"version": version, "framework": framework, **spec}
    if uri is not None:
        body["modelUri"] = uri
    return {
        "apiVersion": "clipper.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": body,
    }


def clipper_app(name: str, models: Sequence[str], **spec: Any) -> dict[str, Any]:
    """A ClipperApp manifest over the named ModelDeployments."""
    return {
        "apiVersion": "clipper.dev/v1alpha1",
        "kind": "ClipperApp",
        "metadata": {"name": name},
        "spec": {"models": list(models), **spec},
    }


def write_manifests(path: Path, *objects: Mapping[str, Any]) -> Path:
    """Write ``objects`` as one multi-document YAML file (atomically, as editors save)."""
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(yaml.safe_dump_all([dict(o) for o in objects], sort_keys=False))
    staged.replace(path)
    return path


class LocalRun:
    """``clipper run -f PATH...`` as a child process."""

    def __init__(
        self,
        paths: Sequence[Path],
        cache_dir: Path,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.env = {"CLIPPER_CACHE_DIR": str(cache_dir), "NO_COLOR": "1", **(env or {})}
        command = ["run", *(a for p in paths for a in ("-f", str(p))), *args]
        self.process = ClipperProcess(command, env=self.env)

    @property
    def pid(self) -> int:
        return self.process.pid

    def logs(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def wait_serving(self, timeout: float = 120.0) -> LocalRun:
        """Until the run prints its endpoints; fails early, with its log, if it exits."""

        def serving() -> bool:
            text = self.logs()
            if not self.process.alive():
                raise ProcessExited(
                    f"clipper run exited with {self.process.proc.returncode}:\n{text}"
                )
            return SERVING_BANNER in text

        try:
            wait_for(serving, timeout=timeout, interval=0.1, what="clipper run serving")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- logs ---\n{self.logs()}") from None
        return self

    def info(self) -> Any:
        """This run's ``RunInfo`` (control API address and token, endpoints)."""
        from clipper.local.state import live_runs

        found = [run for run in live_runs(self.cache_dir / "run") if run.pid == self.pid]
        if not found:
            raise RuntimeError(f"clipper run {self.pid} has published no run.json")
        return found[0]

    @property
    def url(self) -> str:
        return str(self.info().http_url)

    @property
    def grpc_address(self) -> str:
        return str(self.info().grpc_address)

    def status(self) -> dict[str, Any]:
        from clipper.local.client import ControlClient

        return ControlClient(self.info(), timeout=scaled(30)).status()

    def wait_status(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 60.0, what: str = "status"
    ) -> dict[str, Any]:
        """Poll the status until ``check`` holds; the status that passed."""

        def passed() -> dict[str, Any] | None:
            if not self.process.alive():
                raise ProcessExited(f"clipper run exited:\n{self.logs()}")
            state = self.status()
            return state if check(state) else None

        try:
            return wait_for(passed, timeout=timeout, interval=0.2, what=what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- status ---\n{self._last_status()}") from None

    def _last_status(self) -> str:
        with contextlib.suppress(Exception):
            return json.dumps(self.status(), indent=1)[-6000:]
        return "(unavailable)"

    def child_pids(self) -> list[int]:
        """The pids of every process the run reports (frontend and model servers)."""
        return [p["pid"] for p in self.status()["processes"] if p.get("pid")]

    def command(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """``clipper ARGS`` (apply, status) as the user runs it, against this run."""
        return subprocess.run(
            [sys.executable, "-m", "clipper", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=scaled(timeout),
        )

    def apply(self, path: Path) -> subprocess.CompletedProcess[str]:
        return self.command("apply", "-f", str(path), "--pid", str(self.pid))

    def stop(self, timeout: float = 40.0) -> int:
        return self.process.stop(timeout)

    def __enter__(self) -> LocalRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def deployment(status: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One ModelDeployment's entry in a run's status."""
    return next(d for d in status["deployments"] if d["name"] == name)


def traffic(status: Mapping[str, Any], name: str) -> dict[str, int]:
    """``{version: weight}`` of one ModelDeployment."""
    return {
        t["version"]: t["weight"] for t in deployment(status, name)["status"].get("traffic", [])
    }


def label_until(
    local: LocalRun,
    done: Callable[[dict[str, Any]], bool],
    offset: int = 0,
    max_queries: int = 1500,
    max_seconds: float = 240.0,
) -> list[dict[str, Any]]:
    """Predict digits one by one on app ``digits`` and send each answer's true label by
    its query id (as ``examples/digits/client.py feedback`` does) until ``done(status)``,
    checked every 10 queries; every answer, with its ``row``. Bounded in queries and
    seconds: past either it fails, saying how many labels it sent."""
    from clipper.testing.models import digits

    pixels, labels = digits()
    answers: list[dict[str, Any]] = []
    started = time.monotonic()
    for i in range(max_queries):
        row = (offset + i) % len(pixels)
        answer = post_json(f"{local.url}/digits/predict", {"input": pixels[row].tolist()})
        answer["row"] = row
        answers.append(answer)
        if not answer["default"]:
            body = {"query_id": answer["query_id"], "label": int(labels[row])}
            post_json(f"{local.url}/digits/feedback", body)
        if i % 10 == 9 and done(local.status()):
            return answers
        assert time.monotonic() - started < max_seconds, f"no verdict after {i + 1} labels"
    raise AssertionError(f"no verdict after {max_queries} labels")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@dataclass
class LoadResult:
    """What a load loop counted."""

    requests: int = 0
    failures: int = 0
    examples: list[str] = field(default_factory=list)
    """The first few failures, for the assertion message."""
    seconds: float = 0.0

    def fail(self, what: str) -> None:
        self.failures += 1
        if len(self.examples) < 5:
            self.examples.append(
                f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {what}"
            )


class LoadLoop:
    """``threads`` clients posting ``{"input": row}`` to ``/{app}/predict`` back to back.

    Bounded: it stops after ``max_requests`` or ``max_seconds``, whichever comes
    first, or at ``stop()``. Every answer that is not a 200 with ``"default": false``
    is a failure.
    """

    def __init__(
        self,
        url: str,
        app: str,
        rows: Sequence[Sequence[float]],
        threads: int = 4,
        max_requests: int = 20_000,
        max_seconds: float = 120.0,
    ) -> None:
        address = urlsplit(url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port
        self.path = f"/{app}/predict"
        self.bodies = [json.dumps({"input": list(map(float, row))}).encode() for row in rows]
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(threads)]

    def start(self) -> LoadLoop:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def _take(self) -> bool:
        with self._lock:
            over = time.monotonic() - self._started > self.max_seconds
            if self._stop.is_set() or over or self.result.requests >= self.max_requests:
                return False
            self.result.requests += 1
            return True

    def _client(self, index: int) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=scaled(30))
        sent = 0
        while self._take():
            body = self.bodies[(index + sent) % len(self.bodies)]
            sent += 1
            try:
                conn.request("POST", self.path, body, {"Content-Type": "application/json"})
                answer = conn.getresponse()
                text = answer.read()
                outcome = json.loads(text) if answer.status == 200 else None
                if outcome is None or outcome.get("default"):
                    with self._lock:
                        self.result.fail(f"{answer.status}: {text[:200]!r}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                with self._lock:
                    self.result.fail(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=scaled(30))
        conn.close()


def processes_with_env(name: str, value: str) -> list[int]:
    """Live processes whose environment has ``name=value``: every process a run started
    (they inherit its environment), whether or not the run reported it."""
    wanted = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if wanted in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found
