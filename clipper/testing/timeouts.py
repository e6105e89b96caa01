"""One time scale for every wait in the tests.

Every deadline a test waits on -- ``wait_for``, the Kubernetes helpers, a process's
readiness, its exit, pytest-timeout's per-test limit -- is written as the seconds it
needs on a quiet machine and goes through ``scaled()``. On a busy machine (CI, two
cores shared with a CPU hog or a kind cluster) one setting lengthens them all:

* ``CLIPPER_TEST_TIMEOUT_SCALE`` (a positive number) when set;
* else 3 under ``CI=true``: a CPU hog on one of two cores halves what a test gets,
  and a CI runner adds its own noise on top; 3x covers both with room to spare,
  while a wait that will never succeed still fails within minutes, not hours;
* else 1.

A larger scale costs nothing while tests pass: waits poll their condition and
return as soon as it holds, so only a wait that is going to fail takes longer.

The helpers of ``clipper.testing`` scale the ``timeout`` they are given themselves
(pass quiet-machine seconds to them); a test's own deadline -- ``asyncio.wait_for``,
``Popen.wait``, an RPC's deadline -- wraps its number in ``scaled()``.
"""

from __future__ import annotations

import os

SCALE_VARIABLE = "CLIPPER_TEST_TIMEOUT_SCALE"
CI_SCALE = 3.0


def in_ci() -> bool:
    """``CI`` is set to a true value, as CI services and ``.ci/run`` set it."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def scale() -> float:
    """The factor every test deadline is multiplied by (read each call, so a test
    or a child process sees the environment it runs in)."""
    raw = os.environ.get(SCALE_VARIABLE, "").strip()
    if not raw:
        return CI_SCALE if in_ci() else 1.0
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ValueError(
            f"{SCALE_VARIABLE}={raw!r} is not a positive number: set it to e.g. 1 (a quiet "
            f"machine) or 3 (a busy one), or unset it"
        )
    return value


def scaled(seconds: float) -> float:
    """``seconds`` (what a wait needs on a quiet machine) for the machine at hand."""
    return seconds * scale()
