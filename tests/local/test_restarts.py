"""Crashed children of ``clipper run`` come back after one back-off rule for all.

A real run (a python identity model and the frontend) with a short back-off, so
the test is quick: each child is killed three times -- the second time right after
it came back (the wait doubles), the third after it had been healthy for longer
than ``--restart-healthy-after-s`` (the wait is the first one again). What is
checked is the delay the run logs, never how long anything took.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from clipper.testing.local import LocalRun, clipper_app, model_deployment, write_manifests
from clipper.testing.processes import free_port
from clipper.testing.timeouts import scaled

FIRST_S = 0.2
HEALTHY_S = 3.0
"""Long enough that "killed right after it came back" is always within it, even with
this shared machine busy; waited out once per child."""
MODEL = "model echo@v1#0"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    folder = tmp_path_factory.mktemp("restart-manifests")
    service = {"httpPort": free_port(), "grpcPort": free_port()}
    write_manifests(
        folder / "run.yaml",
        clipper_app("echo", ["echo"], frontend={"service": service}),
        model_deployment("echo", "v1", "python", "clipper.testing.functions:identity"),
    )
    args = ["--no-watch", "--restart-backoff-s", str(FIRST_S)]
    args += ["--restart-healthy-after-s", str(HEALTHY_S)]
    with LocalRun([folder], tmp_path_factory.mktemp("restart-cache"), args) as started:
        started.wait_serving()
        yield started


def _healthy_pid(status: dict[str, Any], name: str) -> int | None:
    """The pid of the named child once it answers its health checks."""
    for process in status["processes"]:
        if process["name"] == name and process["state"] in ("ready", "live"):
            return int(process["pid"])
    return None


def _kill_when_healthy(run: LocalRun, name: str, before: int | None) -> int:
    """SIGKILL the named child as soon as a process other than ``before`` is healthy."""
    status = run.wait_status(
        lambda s: _healthy_pid(s, name) not in (None, before), timeout=90, what=f"{name} up"
    )
    pid = _healthy_pid(status, name)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return pid


def _delays(run: LocalRun, pattern: str, count: int) -> list[float]:
    """The first ``count`` restart delays the run logged for lines matching ``pattern``."""
    regex = re.compile(pattern + r".*; restarting it in ([0-9.]+)s")
    deadline = time.monotonic() + scaled(60)
    while True:
        found = [float(m.group(1)) for m in regex.finditer(run.logs())]
        if len(found) >= count or time.monotonic() > deadline:
            return found[:count]
        time.sleep(0.1)


def _crash_three_times(run: LocalRun, name: str, pattern: str) -> list[float]:
    first = _kill_when_healthy(run, name, None)
    assert _delays(run, pattern, 1) == [FIRST_S]
    second = _kill_when_healthy(run, name, first)  # right after it came back
    assert _delays(run, pattern, 2) == [FIRST_S, 2 * FIRST_S]
    status = run.wait_status(lambda s: _healthy_pid(s, name) not in (None, second))
    time.sleep(HEALTHY_S + 1)  # healthy for longer than the healthy period
    third = _healthy_pid(status, name)
    assert third is not None
    os.kill(third, signal.SIGKILL)
    return _delays(run, pattern, 3)


def test_the_frontends_back_off_resets_after_a_healthy_run(run: LocalRun) -> None:
    delays = _crash_three_times(run, "frontend", r"the frontend was killed by SIGKILL")
    assert delays == [FIRST_S, 2 * FIRST_S, FIRST_S]


def test_a_model_servers_back_off_resets_after_a_healthy_run_only(run: LocalRun) -> None:
    delays = _crash_three_times(run, MODEL, re.escape(MODEL) + " was killed by SIGKILL")
    assert delays == [FIRST_S, 2 * FIRST_S, FIRST_S]


def test_no_task_of_the_run_died_unseen(run: LocalRun) -> None:
    assert "Task exception was never retrieved" not in run.logs()
    assert run.status()["tasks"]["failures"] == {}
