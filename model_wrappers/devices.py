"""Where a model runs: which device, and how many CPU threads.

Asking for CUDA where none is usable is fatal unless the user opted into a CPU
fallback (``--cpu-fallback``, ``cpuFallback: true`` on a ModelDeployment). The
model fails to load: the server logs one ERROR line with the reason and exits 1,
never having reported SERVING. We exit rather than stay up NOT_SERVING because
the condition is permanent for the process (CUDA is probed once; a GPU does not
appear later), so a live-but-unready pod would only hold its node and hide the
cause behind "not ready yet". A crash loop is what operators already watch for:
the pod's termination message carries the reason (the operator sets
``terminationMessagePolicy: FallbackToLogsOnError``), the operator rolls the
version back at once on CrashLoopBackOff instead of at the progress deadline,
and ``clipper run`` reports the model's exit. Silently serving a GPU model on
CPU passed readiness and was an outage in disguise (ten times slower, timeouts).
With ``--device auto`` no GPU is simply CPU. The device chosen is logged and
reported as the ``device`` property of ModelMetadata.

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

from clipper.common.errors import ModelLoadError

log = logging.getLogger(__name__)

DEV = Path("/dev")
CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def pick_device(
    requested: str, cuda_available: bool, why_not: str, cpu_fallback: bool = False
) -> str:
    """``cuda`` or ``cpu`` for a ``--device`` of auto, cpu or cuda.

    Raises ``ModelLoadError`` for ``cuda`` without a usable GPU, unless ``cpu_fallback``.
    """
    if requested == "cpu":
        return "cpu"
    if cuda_available:
        return "cuda"
    if requested == "cuda":
        if not cpu_fallback:
            raise ModelLoadError(
                f"device cuda was asked for but no GPU is usable ({why_not}); give the "
                "replica a GPU (resources.limits nvidia.com/gpu, the CUDA image), or set "
                "cpuFallback: true (--cpu-fallback true) to serve on CPU instead"
            )
        log.warning("CUDA was asked for but is not available (%s); running on CPU", why_not)
    return "cpu"


def visible_gpus() -> int:
    """NVIDIA GPUs this container can see, without importing a CUDA library.

    The NVIDIA container runtime exposes only the GPUs allotted to the container
    as ``/dev/nvidia<N>``; ``CUDA_VISIBLE_DEVICES`` narrows them further (empty
    or -1 hides them all).
    """
    found = len(list(DEV.glob("nvidia[0-9]*")))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return found
    ids = [part for part in visible.split(",") if part.strip()]
    if not ids or ids[0].strip() == "-1":
        return 0
    return min(found, len(ids))


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
