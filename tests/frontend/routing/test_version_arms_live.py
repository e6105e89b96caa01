"""Selection learns per model version: a better new version is not held back by
its predecessor's record.

Model ``m`` is served first by a poor digits classifier (version 1) beside a
fair one (``fair``). After 300 labels exp3 has learned to avoid ``m`` (its
weight sits near the log-weight floor). Then ``m`` moves to version 2, a good
classifier. Its arm is ``m@2``, which starts fresh with a fair share instead of
``m@1``'s near-zero weight, so within N = 100 labels ``m`` answers most queries
again. Inheriting ``m@1``'s weight, exp3 would need hundreds of ``fair``'s
losses before it tried ``m`` more than its 5% exploration share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from clipper.testing.frontend import route, serving, write_routes
from clipper.testing.graded_models import train_graded
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits
from clipper.testing.timeouts import scaled

N_LABELS = 100


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModelServer]]:
    paths = train_graded(tmp_path_factory.mktemp("graded-versions"))
    args = ["--threads", "1"]
    with (
        ModelServer.start("sklearn", paths["poor"], name="m", args=[*args, "--version", "1"]) as v1,
        ModelServer.start("sklearn", paths["good"], name="m", args=[*args, "--version", "2"]) as v2,
        ModelServer.start("sklearn", paths["fair"], name="fair", args=args) as fair,
    ):
        yield {"v1": v1, "v2": v2, "fair": fair}


def app(servers: dict[str, ModelServer], version: str) -> dict[str, Any]:
    m = [{"version": version, "weight": 1, "replicas": [servers[f"v{version}"].address]}]
    models = {"m": m, "fair": [servers["fair"].address]}
    return route("digits", models, selection={"type": "exp3"}, latency_slo_ms=5000)


async def label(http: aiohttp.ClientSession, url: str, rounds: int, seed: int) -> list[str]:
    """Predict and label ``rounds`` digits; the model that answered each."""
    pixels, labels = digits()
    answered = []
    for i in np.random.default_rng(seed).integers(len(labels), size=rounds):
        async with http.post(f"{url}/digits/predict", json={"input": pixels[i].tolist()}) as r:
            answer = await r.json()
        body = {"query_id": answer["query_id"], "label": int(labels[i])}
        async with http.post(f"{url}/digits/feedback", json=body) as r:
            losses = (await r.json())["losses"]
        answered += list(losses)
    return answered


async def test_a_better_new_version_wins_most_traffic_within_n_labels(
    routes: Path, versions: dict[str, ModelServer]
) -> None:
    write_routes(routes, app(versions, "1"))
    async with serving(routes, seed=7) as fe, aiohttp.ClientSession() as http:
        runtime = fe.frontend.router.app("digits")
        await label(http, fe.url, 300, seed=1)
        assert runtime.policy.weights()["m"] < 0.2  # m@1 is poor: learned to avoid it
        write_routes(routes, app(versions, "2"))
        deadline = time.monotonic() + scaled(20)
        while fe.frontend.router.app("digits").arms["m"] != "m@2":
            assert time.monotonic() < deadline, "the routes change never applied"
            await asyncio.sleep(0.05)
        await fe.wait_ready()
        answered = await label(http, fe.url, N_LABELS, seed=2)
        weights = fe.frontend.router.app("digits").policy.weights()
    assert answered[-50:].count("m") > 25, answered
    assert weights["m"] > weights["fair"], weights
