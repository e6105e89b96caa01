"""Selection skips a model with no ready replica while another model can answer.

Two real model containers (the identity function) serve one exp3 app; one is
stopped. The frontend's health checks mark it down, and from then on every query
goes to the model that is up: no query becomes an ``unavailable`` default while
a healthy model idles. The probability each selection reports is the one its
draw had among the available models (1.0 here), which is what exp3's importance
weighting needs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from clipper.testing.frontend import route, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.timeouts import scaled

ARGS = ["--input-datatype", "FP64", "--input-shape=-1,4", "--threads", "1"]
URI = "clipper.testing.functions:identity"


async def test_a_model_with_no_ready_replica_is_not_selected(routes: Path) -> None:
    with (
        ModelServer.start("python", URI, name="up", args=ARGS) as up,
        ModelServer.start("python", URI, name="down", args=ARGS) as down,
    ):
        models = {"up": [up.address], "down": [down.address]}
        write_routes(
            routes,
            route("two", models, latency_slo_ms=2000, cache={"enabled": False}, default_output=-1),
        )
        async with serving(routes, seed=4) as fe, aiohttp.ClientSession() as http:
            down.stop()
            app = fe.frontend.router.app("two")
            deadline = time.monotonic() + scaled(20)
            while app.models["down"].up:
                assert time.monotonic() < deadline, "the frontend never saw 'down' stop"
                await asyncio.sleep(0.05)
            answers = []
            for i in range(40):
                async with http.post(
                    f"{fe.url}/two/predict", json={"input": [float(i), 0.0, 0.0, 0.0]}
                ) as r:
                    assert r.status == 200, await r.text()
                    answers.append(await r.json())
            picked = [app.policy.select("", app.unavailable()) for _ in range(200)]
    defaults = [a for a in answers if a.get("default")]
    assert defaults == []
    assert {s.models for s in picked} == {("up",)}
    assert {s.weights["up"] for s in picked} == {1.0}
    assert app.policy.weights()["down"] > 0.25  # not punished: it was never asked
