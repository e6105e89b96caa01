"""GPU: the digits MLP on CUDA, in process against served, and AIMD against fixed batches.

Three measurements, where a CUDA device exists (else the section records why not):

* **in process**, rows/s of ``module(rows)`` by batch size, with the rows copied to
  the device and the answers back (a server must do both): the ceiling;
* **served**, the same batches sent to a real ``clipper model serve --device cuda``
  over gRPC, one batch in flight and four in flight (``model_container.py``'s
  clients), as a share of that ceiling;
* **batching**, one frontend per batching mode in front of that server, loaded by
  wrk with single-row queries at rising concurrency: what batch size AIMD settles
  on and the req/s it gets, against the best fixed size (``batching.py``'s cell).

The MLP is small, so a batch costs the GPU little more than a kernel launch and
the copies: large batches are nearly free there, which is what AIMD should find.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from clipper.testing.frontend import route
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits_batch, train_torch_mlp

from . import load
from . import ours as our_side
from .batching import MODES as CPU_MODES
from .batching import _cell, summarise
from .record import Options, gpu

BATCHES = [1, 4, 16, 64, 256, 1024]
MODES: dict[str, dict[str, Any]] = {
    **{mode: CPU_MODES[mode] for mode in ("none", "fixed-16", "fixed-64")},
    "fixed-256": {"adaptive": False, "max_batch_size": 256},  # a GPU's batches are larger
    "adaptive": {"adaptive": True, "max_batch_size": 1024},
}
LEVELS = [16, 64, 256]
MAX_CALLS = 100_000


def run(options: Options) -> dict[str, Any]:
    device = gpu()
    if not device["available"]:
        return {"device": device, "cells": [], "notes": [f"No GPU: {device['why']}."]}
    from model_container import served_concurrent, served_sequential  # benchmarks/

    seconds = 0.5 if options.quick else 2.0
    sizes = BATCHES[:3] if options.quick else BATCHES
    with tempfile.TemporaryDirectory(prefix="clipper-eval-gpu-") as tmp:
        directory = Path(tmp)
        torchscript = train_torch_mlp(directory).torchscript
        ceiling = in_process(torchscript, sizes, seconds)
        args = ["--input-shape=-1,64", "--device", "cuda", "--threads", "1"]
        cells = []
        with ModelServer.start("pytorch", torchscript, name="mlp", args=args) as server:
            for size in sizes:
                x = digits_batch(size, "float32")
                one = served_sequential(server, x, seconds)
                four = asyncio.run(served_concurrent(server, x, seconds, 4))
                cells.append(
                    {
                        "batch": size,
                        "rows_per_s": ceiling[size],
                        "served_1": one,
                        "served_4": four,
                        "share_1": one / ceiling[size],
                        "share_4": four / ceiling[size],
                    }
                )
                print(
                    f"  gpu batch {size:>5}: in process {ceiling[size]:12,.0f} rows/s, "
                    f"served x1 {one:10,.0f} x4 {four:10,.0f}",
                    flush=True,
                )
            batching = aimd_against_fixed(server, directory, options)
    return {"device": device, "cells": cells, **batching}


def in_process(torchscript: Path, sizes: list[int], seconds: float) -> dict[int, float]:
    """rows/s per batch size: host rows to the device, the module, answers back."""
    import torch

    module = torch.jit.load(str(torchscript), map_location="cuda")
    rates = {}
    with torch.inference_mode():
        for size in sizes:
            rows = torch.from_numpy(digits_batch(size, "float32"))
            for _ in range(10):
                module(rows.cuda()).cpu()
            calls, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds and calls < MAX_CALLS:
                module(rows.cuda()).cpu().numpy()
                calls += 1
            rates[size] = calls * size / elapsed
    return rates


def aimd_against_fixed(server: ModelServer, directory: Path, options: Options) -> dict[str, Any]:
    """One frontend per batching mode in front of the GPU server, wrk at each level."""
    notes = load.missing_tools(("wrk",))
    if notes:
        return {"batching": [], "batching_summary": [], "notes": notes}
    modes = ["none", "fixed-64", "adaptive"] if options.quick else list(MODES)
    levels = LEVELS[:1] if options.quick else LEVELS
    script = load.fixed_script([json.dumps({"input": r.tolist()}) for r in digits_batch(64)])
    cells: list[dict[str, Any]] = []
    for mode in modes:
        app = route(
            "mlp",
            {"mlp": [server.address]},
            latency_slo_ms=1000,
            default_output=-1,
            cache={"enabled": False},
            batching={"mlp": MODES[mode]},
        )
        with our_side.frontend(directory / f"routes-{mode}.yaml", app) as process:
            cells += [_cell(process, "mlp", mode, c, script, options.seconds) for c in levels]
    return {"batching": cells, "batching_summary": summarise(cells), "notes": []}
