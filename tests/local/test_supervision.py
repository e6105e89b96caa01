"""No background task of ``clipper run`` dies silently.

Each test makes one kind of task die for a real reason, through a real seam -- the
terminal a child's log is echoed to fails once, the run's ``changed`` callback
raises once -- around real child processes (a python child, a frontend, a model
server), and checks that the traceback is logged, the crash is counted in the run's
``TaskRegistry`` (what ``clipper status`` shows), and the task came back: it still
follows its child afterwards.
"""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from clipper.common.routing import RoutingTable
from clipper.common.tasks import TaskRegistry
from clipper.local import status
from clipper.local.frontend_process import FrontendProcess
from clipper.local.ports import PortChoice, listen
from clipper.local.process import LogSink, Process
from clipper.local.replica import Launch, ModelReplica
from clipper.local.routes_file import RoutesFile
from clipper.testing.timeouts import scaled

TIMEOUT_S = scaled(90.0)


class FlakyTerminal(io.StringIO):
    """A terminal that fails one write with EIO, as a pty that went away does."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def write(self, text: str) -> int:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EIO, "Input/output error")
        return super().write(text)


async def until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def crash_records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "clipper.common.tasks" and name in r.getMessage() and r.exc_info
    ]


def raise_once() -> Callable[[], None]:
    calls = [0]

    def changed() -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("the run's callback failed")

    return changed


async def test_a_log_pump_that_dies_is_restarted_and_the_child_still_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    go = tmp_path / "go"
    script = (
        "import os, time\n"
        "print('one', flush=True)\n"
        f"while not os.path.exists({str(go)!r}):\n"
        "    time.sleep(0.02)\n"
        "print('two', flush=True)\n"
    )
    terminal, tasks = FlakyTerminal(), TaskRegistry()
    child = Process("child", [sys.executable, "-c", script], LogSink(terminal), tasks=tasks)
    await child.start()
    name = "child: log pump"
    await until(lambda: tasks.crashes.get(name) == 1, "the pump to crash on 'one'")
    assert crash_records(caplog, name), "the pump's death must be logged with its traceback"
    assert not child.exited.is_set(), "the child still runs: a dead pump is no exit"
    go.touch()
    await asyncio.wait_for(child.exited.wait(), TIMEOUT_S)
    assert child.returncode == 0
    assert "[child] two" in terminal.getvalue()  # read by the restarted pump
    assert tasks.crashes == {name: 1}
    assert tasks.healthy


async def test_a_frontends_health_poll_that_dies_is_restarted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    routes = RoutesFile(tmp_path / "routes.yaml")
    routes.write(RoutingTable(apps={}))
    tasks, raised = TaskRegistry(), []

    def changed() -> None:  # fails once: the first time the poll reports the frontend live
        if front.live and not raised:
            raised.append(True)
            raise RuntimeError("the run's callback failed")

    sink = LogSink(io.StringIO())
    http = listen("127.0.0.1", PortChoice(0, "test"))
    front = FrontendProcess(sink, routes.path, http, 0, (), changed, tasks)
    await front.start()
    try:
        name = "frontend: health poll"
        await until(lambda: tasks.crashes.get(name) == 1, "the poll to crash")
        await until(lambda: front.live, "the frontend to be seen live again")
        front.process.signal(signal.SIGKILL)
        await until(lambda: not front.live, "the poll to see the frontend gone")
    finally:
        await front.stop(5.0)
        http.close()
    assert tasks.crashes.get(name) == 1
    assert crash_records(caplog, name)
    rendered = status.render(_status_with(status.tasks_entry(tasks)))
    assert "frontend: health poll: 1 crash, restarted" in rendered


async def test_a_replicas_health_watch_that_dies_is_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    args = ("model", "serve", "--framework", "python", "--name", "echo", "--port", "0")
    args += ("--uri", "clipper.testing.functions:identity", "--drain-delay-s", "3")
    tasks = TaskRegistry()
    replica = ModelReplica(
        Launch("echo", "v1", args), 0, LogSink(io.StringIO()), raise_once(), tasks
    )
    await replica.start()
    name = "model echo@v1#0: health watch"
    try:
        await until(lambda: tasks.crashes.get(name) == 1, "the watch to crash on SERVING")
        await until(lambda: replica.ready, "the restarted watch to see SERVING")
        replica.process.signal(signal.SIGTERM)  # drains: NOT_SERVING for 3 s, then exits
        await until(lambda: not replica.ready, "the watch to see the replica draining")
        assert not replica.exited, "seen by the health watch, not by the exit"
    finally:
        await replica.stop(0.0, 10.0)
    assert crash_records(caplog, name)


def _status_with(tasks: dict[str, object]) -> dict[str, object]:
    frontend = {"ready": True, "live": True, "http": "h", "grpc": "g"}
    return {
        "pid": 1,
        "manifests": [],
        "frontend": frontend,
        "apps": [],
        "deployments": [],
        "events": [],
        "tasks": tasks,
    }
