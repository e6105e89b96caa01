"""A model whose batch cost grows faster than linearly: where batching hurts.

Served by our python container (``--framework python --uri
evaluation.cost_models:superlinear`` with ``benchmarks/`` on ``PYTHONPATH``).
A batch of ``n`` rows sleeps ``FIXED_S + QUADRATIC_S * n**2`` and answers each
row with itself: a cost per row of 0.35 ms alone, lowest (~0.25 ms) at two or
three rows, and 3.2 ms at 64 rows, as with models whose work is quadratic in
the padded batch (attention over a batch padded to its longest member). Sleeping,
not computing, keeps the shape exact on a shared machine; the frontend's own
CPU cost is real.
"""

from __future__ import annotations

import time

import numpy as np

FIXED_S = 0.0003
QUADRATIC_S = 0.00005


def cost_s(rows: int) -> float:
    return FIXED_S + QUADRATIC_S * rows * rows


def superlinear(batch: np.ndarray) -> np.ndarray:
    time.sleep(cost_s(len(batch)))
    return batch
