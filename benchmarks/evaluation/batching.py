"""Batching, where it pays and where it does not.

Three cost shapes, each one real container behind one frontend per batching
mode (adaptive AIMD up to 256, fixed sizes, no batching), loaded by wrk at
rising concurrency (closed loop: the offered load is the number of clients
that each send their next query when the last is answered):

* ``digits``: the logistic regression, a cost per row on top of a per-call cost;
* ``noop``: nothing but the per-call cost (RPC, (de)serialisation);
* ``superlinear``: ``cost_models.superlinear``, whose cost per row *rises* past
  two or three rows, so large batches hurt.

Per cell: req/s, p50 and p99, default answers, the mean rows per batch, and for
AIMD the batch limit it ended on. The SLO is 1 s so that no query is turned
into a default by the objective: this measures the batcher, not the SLO.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from clipper.testing.frontend import route
from clipper.testing.models import digits_batch, train_logistic_regression

from . import load
from . import ours as our_side
from .record import Options

MODES: dict[str, dict[str, Any]] = {
    "none": {"adaptive": False, "max_batch_size": 1},
    "fixed-4": {"adaptive": False, "max_batch_size": 4},
    "fixed-16": {"adaptive": False, "max_batch_size": 16},
    "fixed-64": {"adaptive": False, "max_batch_size": 64},
    "adaptive": {"adaptive": True, "max_batch_size": 256},
}
SHAPES = {"digits": "sklearn", "noop": "noop", "superlinear": "superlinear"}


def run(options: Options) -> dict[str, Any]:
    modes = ["none", "fixed-16", "adaptive"] if options.quick else list(MODES)
    levels = [1, 8] if options.quick else [1, 4, 16, 64]
    shapes = ["noop", "superlinear"] if options.quick else list(SHAPES)
    notes = load.missing_tools(("wrk",))
    cells: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="clipper-eval-batching-") as tmp:
        directory = Path(tmp)
        uri = str(train_logistic_regression(directory)) if "digits" in shapes else ""
        models = {s: (SHAPES[s], uri if s == "digits" else "") for s in shapes}
        script = load.fixed_script([json.dumps({"input": r.tolist()}) for r in digits_batch(64)])
        with our_side.containers(models) as servers:
            for mode in modes:
                apps = [
                    route(
                        name,
                        {name: [server.address]},
                        latency_slo_ms=1000,
                        default_output=-1,
                        cache={"enabled": False},
                        batching={name: MODES[mode]},
                    )
                    for name, server in servers.items()
                ]
                with our_side.frontend(directory / f"routes-{mode}.yaml", *apps) as process:
                    for shape in shapes:
                        for c in levels:
                            cells.append(_cell(process, shape, mode, c, script, options.seconds))
    return {
        "cells": cells,
        "modes": modes,
        "concurrency": levels,
        "shapes": shapes,
        "notes": notes,
        "summary": summarise(cells),
    }


def _cell(process: Any, shape: str, mode: str, c: int, script: Path, seconds: float) -> dict:
    before = our_side.counters(process, shape)
    result = load.wrk(f"{process.url}/{shape}/predict", script, c, seconds)
    moved = our_side.delta(before, our_side.counters(process, shape))
    print(
        f"  {shape:<11} {mode:<9} c={c:<3} {result.rps:8,.0f} req/s p99 {result.p99_ms:7.1f} ms "
        f"batch {moved['mean_batch']:5.1f} defaults {moved['defaults']:.0f}",
        flush=True,
    )
    return {
        "shape": shape,
        "mode": mode,
        "concurrency": c,
        **result.as_dict(),
        "defaults": moved["defaults"],
        "mean_batch": moved["mean_batch"],
        "batch_limit": moved["batch_limit"],
    }


def summarise(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per shape and load: AIMD against no batching and against the best fixed size."""
    rows = []
    keys = sorted({(c["shape"], c["concurrency"]) for c in cells})
    for shape, c in keys:
        here = {x["mode"]: x for x in cells if (x["shape"], x["concurrency"]) == (shape, c)}
        fixed = {m: x for m, x in here.items() if m != "adaptive"}
        adaptive, none = here.get("adaptive"), here.get("none")
        if not adaptive or not fixed:
            continue
        best = max(fixed.values(), key=lambda x: x["rps"])
        rows.append(
            {
                "shape": shape,
                "concurrency": c,
                "adaptive_rps": adaptive["rps"],
                "adaptive_p99_ms": adaptive["p99_ms"],
                "adaptive_mean_batch": adaptive["mean_batch"],
                "adaptive_limit": adaptive["batch_limit"],
                "best_fixed": best["mode"],
                "best_fixed_rps": best["rps"],
                "best_fixed_mean_batch": best["mean_batch"],
                "vs_best_fixed": adaptive["rps"] / best["rps"] if best["rps"] else None,
                "vs_none": adaptive["rps"] / none["rps"] if none and none["rps"] else None,
                "p99_vs_none": adaptive["p99_ms"] / none["p99_ms"]
                if none and none["p99_ms"]
                else None,
            }
        )
    return rows
