"""The feedback store in a real frontend: bounded in bytes, copies, in /metrics."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import numpy as np

from clipper.testing.frontend import metric, route, serving, write_routes
from clipper.testing.latency import LatencyControl
from clipper.testing.model_servers import ModelServer

BOUND = 20_000  # bytes: about 20 queries of the echo model's 4 float64s


async def test_the_store_stays_within_its_byte_bound_under_many_queries(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    write_routes(
        routes,
        route(
            "echo", {"echo": [echo_server.address]}, latency_slo_ms=5000, cache={"enabled": False}
        ),
    )
    rows = np.arange(400.0).reshape(100, 4).tolist()
    async with serving(routes, feedback_max_bytes=BOUND) as fe, aiohttp.ClientSession() as http:
        ids = []
        for start in range(0, 100, 10):  # batches: each answer is one buffer of 10 rows
            body = {"input_batch": rows[start : start + 10]}
            async with http.post(f"{fe.url}/echo/predict", json=body) as r:
                assert r.status == 200, await r.text()
                ids += [a["query_id"] for a in (await r.json())["batch_predictions"]]
        text = fe.metrics()
        kept = fe.frontend.plane.state.store.get("echo", ids[-1]).outputs["echo"]
        async with http.post(
            f"{fe.url}/echo/feedback", json={"query_id": ids[0], "label": [0, 1, 2, 3]}
        ) as r:
            evicted = (r.status, await r.json())
        async with http.post(
            f"{fe.url}/echo/feedback", json={"query_id": ids[-1], "label": rows[-1]}
        ) as r:
            assert r.status == 200, await r.text()
    held = metric(text, "clipper_frontend_feedback_store_bytes", app="echo")
    entries = metric(text, "clipper_frontend_feedback_store_entries", app="echo")
    evictions = metric(text, "clipper_frontend_feedback_store_evictions_total", app="echo")
    assert 0 < held <= BOUND == metric(text, "clipper_frontend_feedback_store_max_bytes")
    assert entries + evictions == 100
    assert evictions > 0
    assert kept.base is None
    assert kept.flags.owndata
    assert kept.tolist() == rows[-1]
    assert evicted[0] == 404
    assert "was evicted" in evicted[1]["error"]
