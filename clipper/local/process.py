"""One child process of ``clipper run``: started, streamed, stopped, never left behind.

Each child runs in its own session (so a Ctrl-C in the terminal reaches only the
runner, which then stops the children in order: the frontend first, so nothing
is sent to a model that is going away) and through ``clipper.local.child`` (so it
dies with the runner even if the runner is killed outright). Its stdout and
stderr are one pipe, read line by line: each line is echoed with the child's
label as a prefix (``[model digits-lr@v1#0] ...``), kept in a short tail for the
error report if the child dies, and offered to watchers (how the runner learns
the port a model server bound). Stopping is SIGTERM to the child's process
group, then SIGKILL after a grace period.

The pump that reads the pipe is supervised (``clipper.common.tasks``): if it dies
(the terminal it echoes to went away, a bug), its traceback is logged and it
resumes reading the same pipe. ``exited`` is set only when the child has really
exited -- never because the pump died, which would make the runner start a second
copy of a child that is still running, and leave the first one blocked on a full
pipe.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from clipper.common.tasks import Backoff, Supervised, TaskRegistry, supervise

log = logging.getLogger(__name__)

TAIL_LINES = 30
LINE_LIMIT = 1 << 20
"""Longest log line read whole; longer ones are cut (a model may log a huge array)."""

LineWatcher = Callable[[str], None]
PUMP_BACKOFF = Backoff(first_s=0.05, max_s=1.0, healthy_after_s=5.0)


class LogSink:
    """Where children's lines go: one stream, each line prefixed, coloured on a terminal."""

    COLOURS = (36, 33, 35, 32, 34, 91, 96, 93, 95, 92)

    def __init__(self, stream: TextIO | None = None, colour: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        if colour is None:
            colour = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.colour = colour
        self._assigned: dict[str, int] = {}

    def prefix(self, label: str) -> str:
        text = f"[{label}]"
        if not self.colour:
            return text
        code = self._assigned.setdefault(label, self.COLOURS[len(self._assigned) % 10])
        return f"\x1b[{code}m{text}\x1b[0m"

    def write(self, label: str, line: str) -> None:
        self.stream.write(f"{self.prefix(label)} {line}\n")
        self.stream.flush()


class Process:
    """A child process with its output streamed through a ``LogSink``."""

    def __init__(
        self,
        label: str,
        argv: Sequence[str],
        sink: LogSink,
        env: Mapping[str, str] | None = None,
        tasks: TaskRegistry | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.label = label
        self.argv = list(argv)
        self.pass_fds = tuple(pass_fds)
        """Open file descriptors the child inherits (the frontend's REST listener)."""
        self.sink = sink
        self.env = dict(env or {})
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.watchers: list[LineWatcher] = []
        self.exited = asyncio.Event()
        self.stopping = False
        """Set once ``stop`` was asked: the exit that follows is expected."""
        self.error: str | None = None
        """Why the process could not be spawned at all."""
        self.healthy_since: float | None = None
        """Loop time it was first seen healthy (see ``clipper.local.restarts``)."""
        self.exited_at: float | None = None
        """Loop time its exit was seen."""
        self.tasks = tasks
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: Supervised | None = None
        self._spawned = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and not self.exited.is_set()

    async def start(self) -> None:
        """Spawn the child; its output is pumped until it exits (``exited`` is then set)."""
        shim = [sys.executable, "-m", "clipper.local.child", str(os.getpid())]
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *shim,
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                start_new_session=True,
                pass_fds=self.pass_fds,
                limit=LINE_LIMIT,
            )
        except BaseException as exc:
            self.error = f"could not be started: {exc}"
            self.exited.set()
            raise
        finally:
            self._spawned.set()
        proc = self._proc
        self._pump = supervise(
            f"{self.label}: log pump",
            lambda: self._read(proc),
            registry=self.tasks,
            backoff=dataclasses.replace(PUMP_BACKOFF),
        )

    def mark_healthy(self) -> None:
        """It answers its health checks; the first time counts."""
        if self.healthy_since is None:
            self.healthy_since = asyncio.get_running_loop().time()

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        """Echo the child's lines until its pipe closes, then see it exit.

        Resumable: after a crash the supervisor calls it again on the same pipe."""
        assert proc.stdout is not None
        while line := await _readline(proc.stdout):
            self._line(line.decode(errors="replace").rstrip("\r\n"))
        await proc.wait()
        self.exited_at = asyncio.get_running_loop().time()
        self.exited.set()

    def _line(self, text: str) -> None:
        self.tail.append(text)
        self.sink.write(self.label, text)
        for watcher in list(self.watchers):
            try:
                watcher(text)
            except Exception:  # a watcher's bug must not stop the log stream
                log.exception("log watcher of %s failed", self.label)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the child's whole process group."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signum)

    async def stop(self, grace_s: float, signum: int | None = None) -> int | None:
        """``signum`` (SIGTERM), wait up to ``grace_s``, then SIGKILL; the exit code."""
        signum = signum or signal.SIGTERM
        self.stopping = True
        await self._spawned.wait()  # a stop asked while it was being spawned waits for it
        if self._proc is None:
            return None
        self.signal(signum)
        try:
            await asyncio.wait_for(self.exited.wait(), grace_s)
        except TimeoutError:
            name = signal.Signals(signum).name
            log.warning("%s did not stop within %.0fs of %s: killing it", self.label, grace_s, name)
            self.kill()
            await self.exited.wait()
        return self._proc.returncode

    def kill(self) -> None:
        self.stopping = True
        self.signal(signal.SIGKILL)

    def reason(self) -> str:
        """Why the child exited, in one line: its exit status and its last error line."""
        code = self.returncode
        if self.error is not None:
            return self.error
        if code is None:
            status = "is running"
        elif code < 0:
            status = f"was killed by {signal.Signals(-code).name}"
        else:
            status = f"exited with code {code}"
        last = _last_error(self.tail)
        if not last and code is not None and code > 0 and self.tail:
            last = self.tail[-1].strip()  # no error logged: its last words, whatever they are
        return f"{status}: {last}" if last else status


async def _readline(stream: asyncio.StreamReader) -> bytes:
    """The next line; a line over the limit comes back cut at the limit."""
    try:
        return await stream.readline()
    except ValueError:  # LimitOverrunError inside: take what there is
        return await stream.read(LINE_LIMIT)


_TEXT_RECORD = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+) (?P<logger>\S+) \[[^\]]*\] (?P<message>.*)$")
_EXCEPTION = re.compile(r"^\w+(\.\w+)*(Error|Exception)\b.*")


def _record(line: str) -> tuple[str, str, str] | None:
    """``(level, logger, message)`` of one of our log lines, plain or JSON."""
    match = _TEXT_RECORD.match(line)
    if match:
        return match.group("level"), match.group("logger"), match.group("message")
    if line.startswith("{"):
        with contextlib.suppress(ValueError, AttributeError):
            entry = json.loads(line)
            return str(entry["level"]), str(entry["logger"]), str(entry["message"])
    return None


def _last_error(lines: collections.deque[str]) -> str:
    """The line that best says why a process died: its last ERROR from a ``clipper``
    logger (grpc may log noise after it), else any last ERROR, else the last line of a
    traceback (``SomeError: ...``); empty if it logged no error."""
    ranked: list[tuple[int, str]] = []
    for line in lines:
        record = _record(line)
        if record is not None and record[0] in ("ERROR", "CRITICAL"):
            ranked.append((0 if record[1].startswith("clipper") else 1, record[2]))
        elif _EXCEPTION.match(line.strip()):
            ranked.append((2, line.strip()))
    if not ranked:
        return ""
    best = min(rank for rank, _ in ranked)
    return [text for rank, text in ranked if rank == best][-1]
