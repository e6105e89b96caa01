"""Where a model runs: which device, and how many CPU threads.

Asking for CUDA on a machine without it is not fatal: the model still serves,
on CPU, and one warning line says so and why -- a GPU node pool that ran out, or
an image built without CUDA, should degrade, not crash-loop. The device chosen
is logged and reported as the ``device`` property of ModelMetadata.

CPU threads default to the CPUs this container may really use. torch and ONNX
Runtime size their pools by the cores of the *node*, so a pod limited to two
CPUs on a 64-core node would run 64 threads and thrash; the cgroup quota and
the affinity mask say what is actually ours.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def pick_device(requested: str, cuda_available: bool, why_not: str) -> str:
    """``cuda`` or ``cpu`` for a ``--device`` of auto, cpu or cuda."""
    if requested == "cpu":
        return "cpu"
    if cuda_available:
        return "cuda"
    if requested == "cuda":
        log.warning("CUDA was asked for but is not available (%s); running on CPU", why_not)
    return "cpu"


def cgroup_cpu_limit() -> float | None:
    """The CPU quota of this process's cgroup, in CPUs; None when unlimited."""
    try:
        if CGROUP_V2_CPU_MAX.exists():
            quota, period = CGROUP_V2_CPU_MAX.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if CGROUP_V1_QUOTA.exists():
            quota = CGROUP_V1_QUOTA.read_text().strip()
            period = CGROUP_V1_PERIOD.read_text().strip()
            return None if int(quota) <= 0 else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    return None


def cpu_threads(requested: int | None) -> int:
    """``--threads`` if given, else the CPUs we may use (quota, then affinity)."""
    if requested:
        return requested
    cpus = len(os.sched_getaffinity(0))
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return cpus
