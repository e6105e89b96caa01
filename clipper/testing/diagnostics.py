"""What a failing test shows besides its traceback, so CI's log alone can explain it.

The helpers that start things register them in ``REGISTRY`` as they go: every
``ClipperProcess`` (model servers, frontends, ``clipper run``, the operator) when it
starts, every namespace ``ControlPlane.create_namespace`` makes. The project's pytest
plugin marks where each test begins and, when the test fails, turns its share into
report sections: the tail of each process's log, and for a test on the control
plane the cluster's Events and the YAML of the objects in its namespaces.

Why a registry instead of asking each fixture: a failure is often in a helper the
test called, not in a fixture, and the useful log is of a process the test never
named (the operator that a ``wait_for_object`` was waiting on). Registering at the
one place processes start covers them all, present and future.

Everything is bounded: a log's last ``LOG_LINES`` lines, each cluster listing cut at
``YAML_CHARS`` characters, and each kubectl call has a deadline, so a broken
cluster cannot hang or flood the report.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

LOG_LINES = 200
OLDER_LOG_LINES = 40  # a process the test did not start (a session server): less of it
YAML_CHARS = 40_000
EVENT_LINES = 200
CUSTOM_RESOURCES = "clipperapps.clipper.dev,modeldeployments.clipper.dev"
WORKLOADS = "deployments,replicasets,pods,services,endpointslices"

Section = tuple[str, str]
Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


class LoggedProcess(Protocol):
    """What a report needs of a process (``ClipperProcess`` is one)."""

    args: list[str]

    @property
    def pid(self) -> int: ...

    def logs(self) -> str: ...

    def alive(self) -> bool: ...

    def returncode(self) -> int | None: ...


def tail(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text``, saying how many were left out."""
    all_lines = text.splitlines()
    if len(all_lines) <= lines:
        return text
    return f"[{len(all_lines) - lines} earlier lines left out]\n" + "\n".join(all_lines[-lines:])


def head(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    return text[:chars] + f"\n[{len(text) - chars} more characters left out]"


def process_section(process: LoggedProcess, lines: int) -> Section:
    command = " ".join(process.args[3:])[:120]  # past "python -m clipper"
    code = process.returncode()
    state = "running" if code is None else f"exited with {code}"
    try:
        text = tail(process.logs(), lines)
    except OSError as exc:
        text = f"(log unreadable: {exc})"
    return f"process {process.pid} ({state}): clipper {command}", text


def cluster_sections(kubectl: Kubectl, namespaces: Sequence[str]) -> list[Section]:
    """Events of every namespace (oldest first) and the YAML of the clipper.dev objects
    and workloads in ``namespaces``; a kubectl that fails shows its error instead.
    ``kubectl`` is ``ControlPlane.kubectl`` (its ``timeout`` is scaled there)."""

    def run(*args: str) -> str:
        try:
            result = kubectl(*args, check=False, timeout=20)  # it scales it
        except subprocess.TimeoutExpired:
            return f"(kubectl {' '.join(args)} timed out)"
        return result.stdout if result.returncode == 0 else f"(failed) {result.stderr}"

    events = run("get", "events", "-A", "--sort-by=.metadata.creationTimestamp")
    sections = [("kubectl get events -A", tail(events, EVENT_LINES))]
    for namespace in dict.fromkeys(namespaces):
        for kinds in (CUSTOM_RESOURCES, WORKLOADS):
            text = run("get", kinds, "-n", namespace, "-o", "yaml")
            sections.append((f"kubectl get {kinds} -n {namespace} -o yaml", head(text, YAML_CHARS)))
    return sections


@dataclass
class Registry:
    """The processes and namespaces started since the current test began."""

    processes: list[LoggedProcess] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    _first: int = 0  # index in ``processes`` of the first one this test started

    def add_process(self, process: LoggedProcess) -> None:
        self.processes.append(process)

    def add_namespace(self, name: str) -> None:
        self.namespaces.append(name)

    def begin_test(self) -> None:
        """Forget what has ended; what still runs (a session's server) stays listed."""
        self.processes = [p for p in self.processes if p.alive()]
        self._first = len(self.processes)
        self.namespaces.clear()

    def process_sections(self) -> list[Section]:
        older = [process_section(p, OLDER_LOG_LINES) for p in self.processes[: self._first]]
        return older + [process_section(p, LOG_LINES) for p in self.processes[self._first :]]


REGISTRY = Registry()
