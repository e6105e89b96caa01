"""A new version that starts from its predecessor with a bounded prior
(``new_version: {start: predecessor, prior_observations: K}``), in memory and in Redis.

Model ``m`` serves beside ``fair`` (a fair digits classifier) under exp3. Its
version 1 is learned on for 300 labels, then a rollout moves ``m`` to version 2;
its arm ``m@2`` starts from ``m@1``'s weight moved to within K x eta of a fair
share (K = 10, eta = gamma / 2 = 0.05: at most 0.5 nats, a weight between 0.38
and 0.62 of two):

- a better v2 after a poor v1: the prior holds it back only a little, and within
  N = 100 labels it answers most queries;
- a worse v2 after a good v1: the prior keeps ``m`` ahead of ``fair`` at first,
  but no further ahead than K labels' worth, and labels soon outweigh it.

With the Redis backend, the prior is seeded in Redis once, in the frame every
frontend's increments add to: a second frontend that joins later loads it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from clipper.testing.frontend import Serving, route, serving, write_routes
from clipper.testing.graded_models import train_graded
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits
from clipper.testing.redis_server import RedisServer
from clipper.testing.timeouts import scaled

N_LABELS = 100
K = 10
BOUND = np.exp(K * 0.05)
"""The most the prior can favour or hold back ``m`` against ``fair``: e^(K eta)."""


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModelServer]]:
    paths = train_graded(tmp_path_factory.mktemp("graded-prior"))
    args = ["--threads", "1"]
    with (
        ModelServer.start("sklearn", paths["poor"], name="m", args=[*args, "--version", "p"]) as p,
        ModelServer.start("sklearn", paths["good"], name="m", args=[*args, "--version", "g"]) as g,
        ModelServer.start("sklearn", paths["fair"], name="fair", args=args) as fair,
    ):
        yield {"p": p, "g": g, "fair": fair}


def app(servers: dict[str, ModelServer], version: str) -> dict[str, Any]:
    m = [{"version": version, "weight": 1, "replicas": [servers[version].address]}]
    models = {"m": m, "fair": [servers["fair"].address]}
    new_version = {"start": "predecessor", "prior_observations": K}
    return route(
        "digits", models, selection={"type": "exp3"}, new_version=new_version, latency_slo_ms=5000
    )


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


def weights(fe: Serving) -> dict[str, float]:
    return dict(fe.frontend.router.app("digits").policy.weights())


async def move_to(fe: Serving, routes: Path, servers: dict[str, ModelServer], version: str) -> None:
    """Roll ``m`` to ``version`` and wait until the frontend serves it (and, with Redis,
    until one sync round has seeded its prior and reloaded)."""
    write_routes(routes, app(servers, version))
    deadline = time.monotonic() + scaled(20)
    while fe.frontend.router.app("digits").arms["m"] != f"m@{version}":
        assert time.monotonic() < deadline, "the routes change never applied"
        await asyncio.sleep(0.05)
    await fe.wait_ready()
    if fe.frontend.state.shared:
        await fe.frontend.state.sync_once()  # type: ignore[attr-defined]


@asynccontextmanager
async def frontend(routes: Path, backend: str, redis: RedisServer | None) -> AsyncIterator[Serving]:
    state = {} if redis is None else {"state_backend": "redis", "state_url": redis.url}
    async with serving(routes, seed=7, **state) as fe:
        yield fe


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def state(backend: str, request: pytest.FixtureRequest) -> RedisServer | None:
    return request.getfixturevalue("redis") if backend == "redis" else None


async def test_a_better_new_version_wins_most_traffic_within_n_labels_despite_the_prior(
    routes: Path, servers: dict[str, ModelServer], backend: str, state: RedisServer | None
) -> None:
    write_routes(routes, app(servers, "p"))
    async with frontend(routes, backend, state) as fe, aiohttp.ClientSession() as http:
        await label(http, fe.url, 300, seed=1)
        learned = weights(fe)
        await move_to(fe, routes, servers, "g")
        start = weights(fe)
        answered = await label(http, fe.url, N_LABELS, seed=2)
        after = weights(fe)
    assert learned["m"] < 0.2, learned  # m@p is poor: learned to avoid it
    assert start["m"] < start["fair"] <= BOUND * start["m"] * 1.001, start  # held back, bounded
    assert answered[-50:].count("m") > 25, answered
    assert after["m"] > after["fair"], after


async def test_a_worse_new_version_starts_ahead_and_loses_it_to_labels(
    routes: Path, servers: dict[str, ModelServer], backend: str, state: RedisServer | None
) -> None:
    write_routes(routes, app(servers, "g"))
    async with frontend(routes, backend, state) as fe, aiohttp.ClientSession() as http:
        await label(http, fe.url, 300, seed=1)
        learned = weights(fe)
        await move_to(fe, routes, servers, "p")
        start = weights(fe)
        if state is not None:  # a frontend that joins later loads the seeded prior
            async with frontend(routes, backend, state) as late:
                await late.frontend.state.sync_once()  # type: ignore[attr-defined]
                joined = weights(late)
        answered = await label(http, fe.url, N_LABELS, seed=2)
        after = weights(fe)
    assert learned["m"] > 0.9, learned  # m@g is good
    assert start["fair"] < start["m"] <= BOUND * start["fair"] * 1.001, start  # ahead, bounded
    if state is not None:
        assert joined == pytest.approx(start, abs=1e-6)
    assert after["m"] < after["fair"], (after, answered.count("m"))


async def test_a_fresh_worse_new_version_is_not_favoured_by_its_first_labels(
    routes: Path, servers: dict[str, ModelServer], backend: str, state: RedisServer | None
) -> None:
    """The default rule, fresh: a fair share, in Redis too, where an arm's log-weight
    is a sum in the frame of the others' (a fresh arm seeded at a fair share, not 0)."""

    def fresh(version: str) -> dict[str, Any]:
        return {**app(servers, version), "new_version": {"start": "fresh"}}

    write_routes(routes, fresh("g"))
    async with frontend(routes, backend, state) as fe, aiohttp.ClientSession() as http:
        await label(http, fe.url, 300, seed=1)
        write_routes(routes, fresh("p"))
        deadline = time.monotonic() + scaled(20)
        while fe.frontend.router.app("digits").arms["m"] != "m@p":
            assert time.monotonic() < deadline, "the routes change never applied"
            await asyncio.sleep(0.05)
        await fe.wait_ready()
        start = weights(fe)
        await label(http, fe.url, 30, seed=2)
        if fe.frontend.state.shared:
            await fe.frontend.state.sync_once()  # type: ignore[attr-defined]
        after = weights(fe)
    assert start["m"] == pytest.approx(start["fair"], abs=1e-6), start
    assert after["m"] < after["fair"], after
