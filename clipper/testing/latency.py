"""A model whose latency the test controls, for batching and SLO tests.

Serve it with ``--framework python --uri clipper.testing.latency:echo`` and the
environment variable ``CLIPPER_TESTING_LATENCY_FILE`` naming a file that
``LatencyControl`` writes: each batch sleeps ``fixed + per_row * rows`` seconds
(read afresh per batch) and then answers every row with itself. So a test can
make the model fast, slow, or slow in proportion to the batch, while it runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

ENV = "CLIPPER_TESTING_LATENCY_FILE"
URI = "clipper.testing.latency:echo"


def _latency(rows: int) -> float:
    path = os.environ.get(ENV)
    if not path:
        return 0.0
    try:
        fixed, per_row = (float(v) for v in Path(path).read_text().split())
    except (OSError, ValueError):
        return 0.0
    return fixed + per_row * rows


def echo(batch: np.ndarray) -> np.ndarray:
    """Each row back, after the latency the control file asks for."""
    delay = _latency(len(batch))
    if delay > 0:
        time.sleep(delay)
    return batch


class LatencyControl:
    """Writes the file that ``echo`` reads (atomically, so a batch never reads half)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.set(0.0)

    @property
    def env(self) -> dict[str, str]:
        return {ENV: str(self.path)}

    def set(self, fixed_s: float, per_row_s: float = 0.0) -> None:
        staged = self.path.with_suffix(".tmp")
        staged.write_text(f"{fixed_s} {per_row_s}")
        staged.replace(self.path)
