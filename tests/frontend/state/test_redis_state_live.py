"""Selection state shared through a real redis-server by real frontends.

Two frontends (in this process, each with its own state backend and event-loop
tasks) serve one app of three real digits classifiers, sharing one Redis. The
tests call ``sync_once`` (one flush-and-reload round, what the background task
does every ``state_refresh_s``) where they need a round to have happened, so no
test sleeps or races the background task.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import redis as redis_py

from clipper.testing.frontend import metric, route, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits
from clipper.testing.redis_server import RedisServer
from clipper.testing.timeouts import scaled


def graded_app(servers: dict[str, ModelServer]) -> dict[str, Any]:
    models = {grade: [server.address] for grade, server in servers.items()}
    return route("digits", models, selection={"type": "exp3"}, latency_slo_ms=5000)


def shared(redis: RedisServer, **settings: Any) -> dict[str, Any]:
    return {"state_backend": "redis", "state_url": redis.url, **settings}


async def post(http: aiohttp.ClientSession, url: str, body: dict, **headers: str) -> Any:
    async with http.post(url, json=body, headers=headers) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def label_rounds(http: aiohttp.ClientSession, url: str, rounds: int, seed: int = 0) -> Any:
    pixels, labels = digits()
    learned = None
    for i in np.random.default_rng(seed).integers(len(labels), size=rounds):
        answer = await post(http, f"{url}/digits/predict", {"input": pixels[i].tolist()})
        body = {"query_id": answer["query_id"], "label": int(labels[i])}
        learned = await post(http, f"{url}/digits/feedback", body)
    return learned


def weights(fe: Any, context: str = "") -> dict[str, float]:
    return dict(fe.frontend.router.app("digits").policy.weights(context))


async def until(condition: Any, what: str, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + scaled(within_s)
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_any_replica_accepts_feedback_for_a_query_another_answered(
    routes: Path, graded_servers: dict[str, ModelServer], redis: RedisServer
) -> None:
    write_routes(routes, graded_app(graded_servers))
    pixels, labels = digits()
    async with (
        serving(routes, **shared(redis), seed=1) as a,
        serving(routes, **shared(redis), seed=2) as b,
        aiohttp.ClientSession() as http,
    ):
        answer = await post(http, f"{a.url}/digits/predict", {"input": pixels[5].tolist()})
        await a.frontend.state.sync_once()  # A's query log reaches Redis
        body = {"query_id": answer["query_id"], "label": int(labels[5])}
        learned = await post(http, f"{b.url}/digits/feedback", body)
        assert set(learned["losses"]) == {answer["model"]} if "model" in answer else True
        async with http.post(f"{a.url}/digits/feedback", json=body) as again:
            assert again.status == 404, await again.text()  # used up, on any replica
        await label_rounds(http, b.url, 40)
        await b.frontend.state.sync_once()
        await a.frontend.state.sync_once()
        assert weights(a) == pytest.approx(weights(b), abs=1e-9)
        assert weights(a)["good"] > 1 / 3  # A learned what only B was told


async def test_a_restarted_frontend_keeps_what_the_fleet_learned(
    routes: Path, graded_servers: dict[str, ModelServer], redis: RedisServer
) -> None:
    write_routes(routes, graded_app(graded_servers))
    async with serving(routes, **shared(redis), seed=1) as first, aiohttp.ClientSession() as http:
        await label_rounds(http, first.url, 60)
        learned = weights(first)
    # stopped: its pending updates were flushed on the way out
    async with serving(routes, **shared(redis), seed=9) as restarted:
        await restarted.frontend.state.sync_once()
        assert weights(restarted) == pytest.approx(learned, abs=1e-9)
    assert learned["good"] > learned["poor"]


async def test_a_reload_never_loses_what_a_flush_in_flight_is_writing(
    routes: Path, graded_servers: dict[str, ModelServer], redis: RedisServer
) -> None:
    """A feedback's increments leave the pending buffer when its flush starts and are
    in Redis when the write lands. A reload that reads Redis in between saw them in
    neither place: the policy forgot what it had just learned until the next round.
    Redis' CLIENT PAUSE WRITE holds the write (scripts are writes) and lets reads
    through, which is that interleaving, every time."""
    write_routes(routes, graded_app(graded_servers))
    pixels, labels = digits()
    settings = shared(redis, state_refresh_s=60)  # no background round: the test drives
    async with serving(routes, **settings, seed=1) as fe, aiohttp.ClientSession() as http:
        state = fe.frontend.state
        await label_rounds(http, fe.url, 5)
        await state.sync_once()
        answer = await post(http, f"{fe.url}/digits/predict", {"input": pixels[7].tolist()})
        before = weights(fe)
        with redis_py.Redis(port=redis.port) as admin:
            admin.execute_command("CLIENT", "PAUSE", 1000, "WRITE")
        body = {"query_id": answer["query_id"], "label": int(labels[7])}
        feedback = asyncio.ensure_future(post(http, f"{fe.url}/digits/feedback", body))
        await until(lambda: state._flushing is not None and not state._pending, "a flush to start")
        await state._refresh()  # reads while the flush's write is held
        reloaded = weights(fe)
        await feedback
        await state.sync_once()
        assert reloaded != before  # the label moved the weights ...
        assert reloaded == pytest.approx(weights(fe), abs=1e-12)  # ... and the reload kept it


async def test_serving_goes_on_while_redis_is_down_and_learning_catches_up(
    routes: Path, graded_servers: dict[str, ModelServer], redis: RedisServer
) -> None:
    write_routes(routes, graded_app(graded_servers))
    settings = shared(redis, state_refresh_s=0.05)
    async with serving(routes, **settings, seed=1) as fe, aiohttp.ClientSession() as http:
        redis.stop()  # and back empty (no persistence): it then holds what was learned meanwhile
        await until(
            lambda: metric(fe.metrics(), "clipper_frontend_state_backend_up") == 0, "backend down"
        )
        async with http.get(f"{fe.url}/readyz") as r:
            assert r.status == 200  # still serving: readiness stays green
            health = await r.json()
        assert health["state_backend"]["reachable"] is False, health
        learned = await label_rounds(http, fe.url, 30, seed=1)  # answered and learned locally
        assert metric(fe.metrics(), "clipper_frontend_state_pending_updates") > 0
        during = weights(fe)
        assert learned["weights"] == pytest.approx(during)
        redis.start()  # same port: the frontend reconnects by itself
        await until(
            lambda: (
                metric(fe.metrics(), "clipper_frontend_state_pending_updates") == 0
                and metric(fe.metrics(), "clipper_frontend_state_backend_up") == 1
            ),
            "catch-up",
        )
        assert weights(fe) == pytest.approx(during, abs=1e-9)  # Redis now has it all
    # A new frontend loads what was learned while Redis was away.
    async with serving(routes, **shared(redis), seed=3) as fresh:
        await fresh.frontend.state.sync_once()
        assert weights(fresh)["good"] > 1 / 3


async def test_the_query_log_stays_within_its_byte_bound_in_redis(
    routes: Path, graded_servers: dict[str, ModelServer], redis: RedisServer
) -> None:
    write_routes(routes, graded_app(graded_servers))
    bound = 3000
    pixels, labels = digits()
    async with (
        serving(routes, **shared(redis, query_log_max_bytes=bound), seed=1) as fe,
        aiohttp.ClientSession() as http,
    ):
        ids = []
        for i in range(60):
            answer = await post(http, f"{fe.url}/digits/predict", {"input": pixels[i].tolist()})
            ids.append(answer["query_id"])
            if i % 10 == 9:
                await fe.frontend.state.sync_once()
        await fe.frontend.state.sync_once()
        text = fe.metrics()
        async with http.post(
            f"{fe.url}/digits/feedback", json={"query_id": ids[0], "label": int(labels[0])}
        ) as r:
            assert r.status == 404
            assert "evicted" in (await r.json())["error"]
        await post(
            http, f"{fe.url}/digits/feedback", {"query_id": ids[-1], "label": int(labels[59])}
        )
    held = metric(text, "clipper_frontend_feedback_store_bytes", app="digits")
    assert 0 < held <= bound
    assert metric(text, "clipper_frontend_feedback_store_max_bytes") == bound
    assert metric(text, "clipper_frontend_feedback_store_evictions_total", app="digits") > 0
    with redis_py.Redis(port=redis.port) as client:
        assert int(client.get("clipper:qb:digits") or 0) <= bound


async def test_pending_updates_are_bounded_while_redis_is_down(
    routes: Path, graded_servers: dict[str, ModelServer], redis: RedisServer
) -> None:
    write_routes(routes, graded_app(graded_servers))
    pixels, labels = digits()
    settings = shared(redis, state_pending_max=4, state_refresh_s=0.05)
    async with serving(routes, **settings, seed=1) as fe, aiohttp.ClientSession() as http:
        redis.stop()
        await until(
            lambda: metric(fe.metrics(), "clipper_frontend_state_backend_up") == 0, "backend down"
        )
        for user in range(12):  # a context per user: a new pending key each
            context = {"X-Clipper-Context": f"user-{user}"}
            body = {"input": pixels[user].tolist(), "label": int(labels[user])}
            await post(http, f"{fe.url}/digits/feedback", body, **context)
        text = fe.metrics()
    assert metric(text, "clipper_frontend_state_pending_updates") == 4
    assert metric(text, "clipper_frontend_state_pending_max") == 4
    assert metric(text, "clipper_frontend_state_dropped_updates_total") == 8


def test_a_redis_backend_without_a_usable_url_is_refused_with_the_forms_it_takes() -> None:
    from pydantic import ValidationError

    from clipper.frontend.settings import FrontendSettings

    with pytest.raises(ValidationError, match="needs --state-url"):
        FrontendSettings(state_backend="redis")
    with pytest.raises(ValidationError, match="expected redis://host:port/db") as caught:
        FrontendSettings(state_backend="redis", state_url="http://user:secret@example:6379")
    (error,) = caught.value.errors()
    assert "secret" not in error["msg"]  # what `clipper frontend` logs: no password


async def test_queries_queued_while_redis_is_down_are_bounded_in_bytes(
    routes: Path, graded_servers: dict[str, ModelServer], redis: RedisServer
) -> None:
    write_routes(routes, graded_app(graded_servers))
    pixels, labels = digits()
    bound = 2000  # bytes: about a dozen encoded answers of one INT64 label
    settings = shared(redis, state_pending_max_bytes=bound, state_refresh_s=0.05)
    async with serving(routes, **settings, seed=1) as fe, aiohttp.ClientSession() as http:
        redis.stop()
        await until(
            lambda: metric(fe.metrics(), "clipper_frontend_state_backend_up") == 0, "backend down"
        )
        ids = []
        for i in range(40):
            answer = await post(http, f"{fe.url}/digits/predict", {"input": pixels[i].tolist()})
            ids.append(answer["query_id"])
        text = fe.metrics()
        async with http.post(
            f"{fe.url}/digits/feedback", json={"query_id": ids[0], "label": int(labels[0])}
        ) as r:
            oldest = r.status  # dropped at the bound, and Redis is away: not found here
        newest = await post(
            http, f"{fe.url}/digits/feedback", {"query_id": ids[-1], "label": int(labels[39])}
        )
    assert 0 < metric(text, "clipper_frontend_state_pending_log_bytes") <= bound
    assert metric(text, "clipper_frontend_state_pending_log_max_bytes") == bound
    assert metric(text, "clipper_frontend_state_dropped_log_entries_total") > 0
    assert oldest == 503  # the id may be in Redis: the frontend cannot tell while it is away
    assert newest["losses"]  # still queued here: feedback works without Redis


async def stats_state(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """What ``/v1/stats/versions`` (the operator's read) says of the state backend."""
    async with http.get(f"{url}/v1/stats/versions") as r:
        assert r.status == 200, await r.text()
        shown: dict[str, Any] = (await r.json())["state_backend"]
        return shown


async def test_the_stats_document_says_since_when_redis_is_unreachable(
    routes: Path, graded_servers: dict[str, ModelServer], redis: RedisServer
) -> None:
    """The report the operator's ``StateBackendReachable`` condition is built from."""
    write_routes(routes, graded_app(graded_servers))
    settings = shared(redis, state_refresh_s=0.05)
    async with serving(routes, **settings, seed=1) as fe, aiohttp.ClientSession() as http:
        await fe.frontend.state.sync_once()
        reached = await stats_state(http, fe.url)
        before = time.time()
        redis.stop()
        await until(
            lambda: metric(fe.metrics(), "clipper_frontend_state_backend_up") == 0, "backend down"
        )
        lost = await stats_state(http, fe.url)
        redis.start()
        await until(
            lambda: metric(fe.metrics(), "clipper_frontend_state_backend_up") == 1, "backend up"
        )
        back = await stats_state(http, fe.url)
    assert reached == {"backend": "redis", "reachable": True}
    assert lost["reachable"] is False
    assert before <= lost["unreachable_since"] <= time.time()
    assert lost["error"]
    assert back == {"backend": "redis", "reachable": True}


async def test_new_arms_waiting_for_their_seed_are_bounded_with_pending_updates(
    redis: RedisServer,
) -> None:
    """While Redis is away, new arms to seed queue like pending updates: at most
    ``state_pending_max``, the rest dropped and counted (those start at 0 there)."""
    from dataclasses import dataclass, field

    from clipper.frontend.selection.exp3 import Exp3
    from clipper.frontend.settings import FrontendSettings
    from clipper.frontend.state.redis_backend import RedisState

    @dataclass
    class App:  # the three things a backend reads of an app (``Learner``)
        name: str = "digits"
        policy: Exp3 = field(default_factory=lambda: Exp3(["m", "fair"], seed=0))
        arms: dict[str, str] = field(default_factory=lambda: {"m": "m@2", "fair": "fair@1"})

    settings = FrontendSettings(routes=None, state_backend="redis", state_url=redis.url,
                                state_pending_max=2)  # fmt: skip
    state = RedisState(redis.url, settings)
    state.inherited(App(), ["", "user-1", "user-2"], "m@1", "m@2", 10)
    assert state.stats().dropped_updates == 1
    await state.sync_once()  # reachable: written (nothing learned yet: nothing to add)
    assert state.stats().dropped_updates == 1
    await state.close()
