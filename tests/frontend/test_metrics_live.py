"""Every metric the frontend documents is exported, with its labels."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from clipper.testing.frontend import hammer, metric, route, serving, write_routes
from clipper.testing.model_servers import ModelServer

FAMILIES = [
    ("clipper_frontend_request_duration_seconds_count", {"app": "echo", "api": "clipper"}),
    ("clipper_frontend_batch_size_count", {"model": "echo", "version": "1"}),
    ("clipper_frontend_batch_duration_seconds_count", {"model": "echo"}),
    ("clipper_frontend_queue_wait_seconds_count", {"model": "echo"}),
    ("clipper_frontend_queue_depth", {"model": "echo", "version": "1"}),
    ("clipper_frontend_batch_limit", {"model": "echo"}),
    ("clipper_frontend_replica_up", {"model": "echo"}),
    ("clipper_frontend_cache_hits_total", {"app": "echo"}),
    ("clipper_frontend_cache_misses_total", {"app": "echo"}),
    ("clipper_frontend_cache_hit_ratio", {"app": "echo"}),
    ("clipper_frontend_cache_bytes", {"app": "echo"}),
    ("clipper_frontend_cache_max_bytes", {"app": "echo"}),
    ("clipper_frontend_cache_doorkeeper_bytes", {"app": "echo"}),
    ("clipper_frontend_cache_kept_out_total", {"app": "echo"}),
    ("clipper_frontend_selection_weight", {"app": "echo", "model": "echo"}),
    ("clipper_frontend_default_outputs_total", {"app": "ghost", "reason": "unavailable"}),
    ("clipper_frontend_errors_total", {"api": "clipper", "code": "404"}),
]


async def test_metrics_are_exported(routes: Path, echo_server: ModelServer) -> None:
    ghost = route("ghost", {"ghost": ["127.0.0.1:1"]})
    write_routes(routes, route("echo", {"echo": [echo_server.address]}), ghost)
    async with serving(routes, ready=False) as fe, aiohttp.ClientSession() as http:
        await hammer(fe.url, "echo", [[1.0, 2.0, 3.0, 4.0]] * 3, concurrency=1)
        async with http.post(f"{fe.url}/nope/predict", json={"input": [1]}) as r:
            assert r.status == 404
        async with http.post(f"{fe.url}/ghost/predict", json={"input": [1]}) as r:
            assert (await r.json())["default"] is True
        async with http.get(f"{fe.url}/metrics") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
    for name, labels in FAMILIES:
        assert f"\n{name}{{" in text, name
        assert any(
            line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items())
            for line in text.splitlines()
        ), (name, labels)
    assert metric(text, "clipper_frontend_replica_up", model="ghost") == 0
    assert metric(text, "clipper_frontend_replica_up", model="echo") == 1
