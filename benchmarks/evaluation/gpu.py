"""GPU: the digits MLP on CUDA by batch size, where a CUDA device exists.

In-process throughput (rows/s of ``module(batch)`` on the device, synchronised)
is the ceiling any server can reach; where no CUDA device is present the
section records that, and why, instead of a number.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from clipper.testing.models import digits_batch, train_torch_mlp

from .record import Options, gpu

BATCHES = [1, 4, 16, 64, 256, 1024]


def run(options: Options) -> dict[str, Any]:
    device = gpu()
    if not device["available"]:
        return {"device": device, "cells": [], "notes": [f"No GPU: {device['why']}."]}
    import torch

    with tempfile.TemporaryDirectory(prefix="clipper-eval-gpu-") as tmp:
        module = torch.jit.load(str(train_torch_mlp(Path(tmp)).torchscript), map_location="cuda")
    cells = []
    for size in BATCHES[:3] if options.quick else BATCHES:
        rows = torch.from_numpy(digits_batch(size, "float32")).cuda()
        calls = 0
        deadline = time.monotonic() + (0.5 if options.quick else 2.0)
        started = time.perf_counter()
        with torch.inference_mode():
            while time.monotonic() < deadline and calls < 100_000:
                module(rows)
                calls += 1
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        cells.append({"batch": size, "rows_per_s": calls * size / elapsed, "calls": calls})
    return {"device": device, "cells": cells, "notes": []}
