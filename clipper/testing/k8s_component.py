"""One control-plane binary as a child process that can never outlive the tests.

Each component runs in its own session (so stopping it reaches anything it spawned)
with its output in its own log file, kept for the report when a test fails. Besides
the orderly SIGTERM-then-SIGKILL of ``reap()``, each child asks the kernel to SIGKILL
it when its parent dies (``PR_SET_PDEATHSIG``): a test run that is killed outright,
by a CI timeout say, still leaves no etcd or API server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


# Looked up here, in the parent: between fork and exec the child only makes the call.
_prctl = ctypes.CDLL(None, use_errno=True).prctl
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the thread that started it ends
    (the fixture starts components from pytest's main thread)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Component:
    """One control-plane binary in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)

    def reap(self, timeout: float) -> None:
        """Wait for the group leader, then SIGKILL whatever is left of the group."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s ignored SIGTERM for %.0fs; killing it", self.name, timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=timeout)
