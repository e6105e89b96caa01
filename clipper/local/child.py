"""``python -m clipper.local.child PARENT_PID COMMAND...``: exec COMMAND, tied to its parent.

Every process ``clipper run`` starts goes through this shim. It asks the kernel
to send it SIGTERM when its parent dies (``PR_SET_PDEATHSIG``, which survives
``exec``), checks that the parent is still the one that started it (it may have
died before the request was made), and replaces itself with COMMAND. So a runner
killed outright -- SIGKILL, the OOM killer, a closed terminal -- still takes its
model servers and frontend with it, and they drain as on any SIGTERM.

Why a shim and not ``preexec_fn``: code that runs between ``fork`` and ``exec``
in a process that has threads (gRPC has several) can deadlock on a lock another
thread held at the fork. Here the call happens in a fresh, single-threaded
interpreter. On systems without ``prctl`` (macOS) the shim just execs; the
runner's own shutdown still stops everything.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def tie_to_parent(parent_pid: int) -> None:
    """SIGTERM this process when ``parent_pid`` (its parent) exits; exit now if it has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        sys.exit(f"clipper.local.child: parent {parent_pid} is gone; not starting")


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].isdigit():
        sys.exit("usage: python -m clipper.local.child PARENT_PID COMMAND [ARGS...]")
    tie_to_parent(int(argv[0]))
    os.execvp(argv[1], argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
