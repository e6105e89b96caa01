"""Start real model containers (``clipper model serve``) and talk to them.

``ModelServer.start(...)`` runs the server as a child process on 127.0.0.1 and
returns once it reports ready over the Open Inference Protocol (``ServerReady``),
failing early with the server's log if it exits. Use it as a context manager, or
call ``stop()``; either way the process is reaped. Frontend tests, examples and
benchmarks use the same helper.

The server binds port 0 (and metrics port -1: any free port) and the helper reads
the ports it got from its ``listening on HOST:PORT (metrics port N)`` line, as
local mode does. Picking a free port first and passing it on is a race: another
process (a parallel test, another engineer's suite) may take it in between.
"""

from __future__ import annotations

import functools
import re
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import numpy as np

from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs, decode_response
from clipper.testing.processes import ClipperProcess, ProcessExited, wait_for
from clipper.testing.timeouts import scaled

_LISTENING = re.compile(r"listening on \S+:(\d+) \(metrics port (\d+|off)\)")


def serve_command(
    framework: str,
    name: str,
    uri: str | Path = "",
    args: Sequence[str] = (),
    port: int = 0,
    metrics: bool = True,
) -> list[str]:
    """``clipper model serve`` arguments; port 0 and metrics port -1 pick free ports."""
    command = ["model", "serve", "--framework", framework, "--name", name]
    command += ["--port", str(port), "--metrics-port", "-1" if metrics else "0"]
    command += ["--uri", str(uri)] if uri else []
    return [*command, *args]


class ModelServer:
    """A running ``clipper model serve`` process and a client for it.

    ``port``, ``metrics_port`` (0: off) and ``address`` are known once
    ``wait_listening`` has read them from the server's log."""

    def __init__(self, process: ClipperProcess, name: str) -> None:
        self.process = process
        self.name = name
        self.port = 0
        self.metrics_port = 0
        self.address = ""

    def wait_listening(self, timeout: float = 60.0) -> ModelServer:
        """Until the server logs the ports it bound; fail early if it exits."""

        def listening() -> re.Match[str] | None:
            if not self.process.alive():
                raise ProcessExited(
                    f"model server exited with {self.process.proc.returncode}:\n{self.logs()}"
                )
            return _LISTENING.search(self.process.logs())

        try:
            match = wait_for(listening, timeout=timeout, interval=0.05, what=f"{self.name} ports")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- logs ---\n{self.logs()}") from None
        self.port = int(match.group(1))
        self.metrics_port = 0 if match.group(2) == "off" else int(match.group(2))
        self.address = f"127.0.0.1:{self.port}"
        return self

    @classmethod
    def start(
        cls,
        framework: str,
        uri: str | Path = "",
        name: str = "model",
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        metrics: bool = True,
        timeout: float = 90.0,
    ) -> ModelServer:
        """Serve a model; ``args`` are more ``clipper model serve`` flags."""
        command = serve_command(framework, name, uri, args, metrics=metrics)
        server = cls(ClipperProcess(command, env=env), name)
        try:
            server.wait_listening(timeout)
            server.wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            if not self.process.alive():
                raise ProcessExited(
                    f"model server exited with {self.process.proc.returncode}:\n{self.logs()}"
                )
            return bool(self.stub.ServerReady(pb.ServerReadyRequest(), timeout=2).ready)

        try:
            wait_for(ready, timeout=timeout, interval=0.1, what=f"{self.name} ready")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- logs ---\n{self.logs()}") from None

    @functools.cached_property
    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)

    @functools.cached_property
    def stub(self) -> Any:
        return pb_grpc.GRPCInferenceServiceStub(self.channel)

    def request(self, inputs: Mapping[str, np.ndarray], **fields: Any) -> pb.ModelInferRequest:
        """A ModelInferRequest for this model with ``inputs`` as raw contents."""
        request = pb.ModelInferRequest(model_name=self.name, **fields)
        add_raw_inputs(request, inputs)
        return request

    def infer(self, inputs: Mapping[str, np.ndarray], timeout: float = 30) -> dict[str, np.ndarray]:
        """Predict ``inputs`` (raw contents); the decoded outputs."""
        response = self.stub.ModelInfer(self.request(inputs), timeout=scaled(timeout))
        return decode_response(response)

    def metrics_text(self) -> str:
        """The Prometheus exposition text from the metrics port."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=scaled(10)) as answer:
            return str(answer.read().decode())

    def logs(self) -> str:
        """Everything the server has logged so far (also after it stopped)."""
        return self.process.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (then SIGKILL after ``timeout``, scaled); the exit code."""
        if "channel" in self.__dict__:
            self.channel.close()
        return self.process.stop(timeout)

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
