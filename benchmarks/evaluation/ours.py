"""Our side of every measurement: model containers and frontends as processes.

The containers are the real ``clipper model serve`` processes and the frontend
the real ``clipper frontend`` process (``clipper.testing`` starts them on free
ports of 127.0.0.1), one thread per container, as the peers get.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clipper.testing.frontend import FrontendProcess, metric, start_model_servers, write_routes
from clipper.testing.model_servers import ModelServer

BENCHMARKS = Path(__file__).resolve().parents[1]
ONE_THREAD = ["--threads", "1"]
SHAPE = ["--input-datatype", "FP64", "--input-shape=-1,64"]


def container_spec(name: str, kind: str, uri: str = "") -> dict[str, Any]:
    """``start_model_servers``' spec for one of the evaluation's models."""
    if kind == "noop":
        return {"framework": "noop", "name": name, "args": [*SHAPE, *ONE_THREAD]}
    if kind == "sklearn":
        return {"framework": "sklearn", "name": name, "uri": uri, "args": ONE_THREAD}
    if kind == "torch":
        args = ["--input-shape=-1,64", *ONE_THREAD]
        return {"framework": "pytorch", "name": name, "uri": uri, "args": args}
    if kind == "superlinear":
        return {
            "framework": "python",
            "name": name,
            "uri": "evaluation.cost_models:superlinear",
            "args": [*SHAPE, *ONE_THREAD],
            "env": {"PYTHONPATH": str(BENCHMARKS)},
        }
    raise ValueError(f"unknown model kind {kind!r}")


@contextlib.contextmanager
def containers(models: dict[str, tuple[str, str]]) -> Iterator[dict[str, ModelServer]]:
    """name -> (kind, uri) started; name -> server."""
    servers = start_model_servers([container_spec(n, k, u) for n, (k, u) in models.items()])
    try:
        yield dict(zip(models, servers, strict=True))
    finally:
        for server in servers:
            server.stop()


@contextlib.contextmanager
def frontend(path: Path, *apps: dict[str, Any]) -> Iterator[FrontendProcess]:
    routes = write_routes(path, *apps)
    with FrontendProcess(routes, args=["--seed", "0"]).wait_ready() as process:
        yield process


def counters(process: FrontendProcess, app: str, model: str | None = None) -> dict[str, float]:
    """The frontend's counters that the sections read before and after a cell."""
    text = process.metrics()
    model = model or app
    return {
        "defaults": metric(text, "clipper_frontend_default_outputs_total", app=app),
        "batch_rows": metric(text, "clipper_frontend_batch_size_sum", model=model),
        "batches": metric(text, "clipper_frontend_batch_size_count", model=model),
        "batch_limit": metric(text, "clipper_frontend_batch_limit", model=model),
        "hits": metric(text, "clipper_frontend_cache_hits_total", app=app),
        "misses": metric(text, "clipper_frontend_cache_misses_total", app=app),
        "coalesced": metric(text, "clipper_frontend_cache_coalesced_total", app=app),
        "shed": metric(text, "clipper_frontend_shed_requests_total", app=app),
    }


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Counters' increase over a cell; gauges (the batch limit) as they ended."""
    moved = {k: after[k] - before[k] for k in after}
    moved["batch_limit"] = after["batch_limit"]
    batches = moved["batches"]
    moved["mean_batch"] = moved["batch_rows"] / batches if batches else 0.0
    lookups = moved["hits"] + moved["misses"] + moved["coalesced"]
    moved["hit_rate"] = (moved["hits"] + moved["coalesced"]) / lookups if lookups else 0.0
    return moved
