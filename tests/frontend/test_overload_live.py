"""The data plane under overload, against real echo model servers.

The echo model answers after a latency the test sets, so a batch can be held in
flight while the test looks at what waits in the queue: no timing assertions,
only polling with a bound.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from clipper.common.errors import Overloaded
from clipper.frontend.batching.queue import Chunk, DeadlineQueue
from clipper.testing.frontend import metric, route, serving, start_model_servers, write_routes
from clipper.testing.latency import URI, LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.waiting import polls

ARGS = ["--input-datatype", "FP64", "--input-shape=-1,4", "--threads", "1"]


def rows(n: int, start: int = 0) -> np.ndarray:
    return np.array([[float(start + i), 1.0, 2.0, 3.0] for i in range(n)])


async def until(condition: Callable[[], bool], what: str) -> None:
    async for _ in polls(10, interval=0.01):
        if condition():
            return
    raise TimeoutError(f"waiting for {what}")


async def is_429(response: aiohttp.ClientResponse, reason: str) -> None:
    """``response`` is a refusal that says ``reason`` and when to retry."""
    assert response.status == 429, await response.text()
    assert "Retry-After" in response.headers
    assert reason in (await response.json())["error"]


def echo_app(server: ModelServer, cache: bool = True, slo_ms: float = 5000) -> dict[str, object]:
    return route(
        "echo",
        {"echo": [server.address]},
        latency_slo_ms=slo_ms,
        cache={"enabled": cache},
        default_output=-1,
    )


async def test_a_requests_misses_go_to_the_queue_as_one_chunk_without_tasks(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    write_routes(routes, echo_app(echo_server))
    latency.set(0.5)  # the first request's batch holds the replica
    async with serving(routes) as fe:
        plane = fe.frontend.plane
        queue = fe.frontend.router.versions[("echo", "1")].queue
        first = asyncio.ensure_future(plane.predict("echo", rows(1, start=100)))
        await until(lambda: queue.rows == 0 and not first.done(), "first batch in flight")
        before = asyncio.all_tasks()
        second = asyncio.ensure_future(plane.predict("echo", rows(16)))
        await until(lambda: queue.rows == 16, "16 rows queued")
        new = asyncio.all_tasks() - before
        assert len(new) <= 2  # the request itself (and perhaps a health check): no task per row
        assert len(queue._heap) == 1  # one chunk of 16 rows
        answers = await second
        await first
    assert [a.default for a in answers] == [False] * 16
    np.testing.assert_array_equal(np.stack([a.output for a in answers]), rows(16))


async def test_identical_rows_in_flight_across_requests_share_one_evaluation(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    write_routes(routes, echo_app(echo_server))
    latency.set(0.5)
    async with serving(routes) as fe:
        plane = fe.frontend.plane
        queue = fe.frontend.router.versions[("echo", "1")].queue
        first = asyncio.ensure_future(plane.predict("echo", rows(1, start=100)))
        await until(lambda: queue.rows == 0 and not first.done(), "first batch in flight")
        y, z, w = rows(3)
        b = asyncio.ensure_future(plane.predict("echo", np.stack([y, z])))
        await until(lambda: queue.rows == 2, "b queued")
        c = asyncio.ensure_future(plane.predict("echo", np.stack([z, y, w, w])))
        await until(lambda: queue.rows == 3, "c's one new row queued")
        assert len(queue._heap) == 2  # b's chunk and c's chunk of w alone
        answers_b, answers_c = await b, await c
        await first
        stats = fe.frontend.router.apps["echo"].cache.stats
    np.testing.assert_array_equal(np.stack([a.output for a in answers_c]), np.stack([z, y, w, w]))
    np.testing.assert_array_equal(np.stack([a.output for a in answers_b]), np.stack([y, z]))
    assert stats.coalesced == 2  # z and y joined b's chunk
    assert stats.misses == 1 + 2 + 2  # first, b's two, c's w (counted per row looked up)


async def test_expired_rows_never_reach_the_model(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    write_routes(routes, echo_app(echo_server, slo_ms=300))
    latency.set(0.6)  # longer than the objective: what queues behind it expires
    async with serving(routes) as fe:
        plane = fe.frontend.plane
        first = asyncio.ensure_future(plane.predict("echo", rows(1, start=100)))
        queue = fe.frontend.router.versions[("echo", "1")].queue
        await until(lambda: queue.rows == 0 and not first.done(), "first batch in flight")
        late = await plane.predict("echo", rows(8))
        await first
        latency.set(0.0)
        await plane.predict("echo", rows(1, start=200))
        text = fe.metrics()
    assert {a.reason for a in late} == {"slo"}
    assert metric(text, "clipper_frontend_batch_size_sum", model="echo") == 2  # not the 8


async def test_rows_admission_refuses_cost_the_cache_no_lookup(
    routes: Path, echo_server: ModelServer
) -> None:
    """Past the door, a version whose queue would hold the rows past the deadline
    refuses them before their keys are built or looked up: the lookups would be
    work for rows already lost."""
    write_routes(routes, echo_app(echo_server, slo_ms=300))
    async with serving(routes) as fe:
        plane = fe.frontend.plane
        version = fe.frontend.router.versions[("echo", "1")]
        loop = asyncio.get_running_loop()
        standing = Chunk(rows(50, start=1000), loop.time() + 60, loop.create_future())
        version.queue.put(standing, loop.time() - 1.0)  # queued a second ago
        version.queue.note_drained(10, 1.0)  # 10 rows/s: 5 s of work queued
        cache = plane.app("echo").cache
        before = cache.stats.lookups
        # No await yields to the loop before the refusal: the batcher cannot take
        # the standing chunk meanwhile.
        with pytest.raises(Overloaded, match="50 rows queued"):
            await plane.predict("echo", rows(4))
        assert cache.stats.lookups == before  # no key built, nothing looked up
        await standing.future  # the batcher serves it once the loop runs


async def test_the_deadline_counts_from_arrival_not_from_the_end_of_the_body(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    write_routes(routes, echo_app(echo_server, cache=False, slo_ms=200))
    async with serving(routes) as fe:
        port = fe.frontend.rest.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"input": [1.0, 2.0, 3.0, 4.0]}'
        head = (
            f"POST /echo/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        await asyncio.sleep(0.5)  # the body arrives after the objective has passed
        writer.write(body)
        await writer.drain()
        response = await reader.read(4096)
        writer.close()
        text = fe.metrics()
    assert response.startswith(b"HTTP/1.1 200")
    assert b'"default":true' in response
    assert b"slo:" in response
    assert metric(text, "clipper_frontend_batch_size_count", model="echo") == 0


async def test_admission_answers_429_with_retry_after_and_keeps_serving(
    routes: Path,
    echo_server: ModelServer,
    latency: LatencyControl,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_routes(routes, echo_app(echo_server))
    latency.set(0.5)
    async with serving(routes, max_inflight_rows=4) as fe, aiohttp.ClientSession() as http:
        plane = fe.frontend.plane
        held = asyncio.ensure_future(plane.predict("echo", rows(4)))
        await until(lambda: plane.admission.rows == 4, "4 rows in flight")
        async with http.post(f"{fe.url}/echo/predict", json={"input": [9.0] * 4}) as refused:
            await is_429(refused, "rows in flight")
            assert int(refused.headers["Retry-After"]) >= 1
        await held
        latency.set(0.0)
        async with http.post(f"{fe.url}/echo/predict", json={"input": [9.0] * 4}) as served:
            assert served.status == 200
            assert (await served.json())["output"] == [9.0] * 4
        text = fe.metrics()
    assert metric(text, "clipper_frontend_shed_requests_total", app="echo", reason="inflight") == 1
    assert metric(text, "clipper_frontend_inflight_rows_bound") == 4
    gc.collect()
    assert "never retrieved" not in caplog.text


@pytest.fixture(scope="module")
def m_control(tmp_path_factory: pytest.TempPathFactory) -> LatencyControl:
    return LatencyControl(tmp_path_factory.mktemp("m-latency") / "latency")


@pytest.fixture(scope="module")
def m_server(m_control: LatencyControl) -> Iterator[ModelServer]:
    spec = {"framework": "python", "uri": URI, "name": "m", "args": ARGS, "env": m_control.env}
    (server,) = start_model_servers([spec])
    yield server
    server.stop()


async def hold(queue: DeadlineQueue, loop: asyncio.AbstractEventLoop) -> float:
    """Hold the queue's replica with one row (the model is slow); returns when it was sent."""
    now = loop.time()
    queue.put(Chunk(rows(1), now + 5, loop.create_future()), now)
    await until(lambda: queue.rows == 0, "the filler row taken")
    return now


async def fill(queue: DeadlineQueue, loop: asyncio.AbstractEventLoop) -> None:
    """Hold the replica with one row, then fill the queue (capacity 2) behind it."""
    now = await hold(queue, loop)
    queue.put(Chunk(rows(2), now + 5, loop.create_future()), now)


async def test_a_full_queue_is_refused_at_the_door_before_the_body_is_read(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    """A single-model app whose queue is full: 429 before the body is read or decoded
    (the malformed body would be a 400 if it were), counted as ``queue_full``."""
    write_routes(routes, echo_app(echo_server, slo_ms=2000))
    latency.set(3.0)
    try:
        async with serving(routes, queue_capacity=2) as fe, aiohttp.ClientSession() as http:
            await fill(fe.frontend.router.versions[("echo", "1")].queue, asyncio.get_running_loop())
            async with http.post(f"{fe.url}/echo/predict", data=b"{not json") as refused:
                await is_429(refused, "queue is full")
            text = fe.metrics()
    finally:
        latency.set(0.0)
    shed = metric(text, "clipper_frontend_shed_requests_total", app="echo", reason="queue_full")
    assert shed == 1


async def test_an_ensemble_leaves_out_a_model_whose_queue_is_full_and_429s_when_all_are_full(
    routes: Path,
    echo_server: ModelServer,
    latency: LatencyControl,
    m_server: ModelServer,
    m_control: LatencyControl,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    models = {"m": [m_server.address], "echo": [echo_server.address]}
    ensemble = route("both", models, latency_slo_ms=2000, selection={"type": "exp4"})
    write_routes(routes, ensemble)
    m_control.set(3.0)
    try:
        async with serving(routes, queue_capacity=2) as fe, aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            await fill(fe.frontend.router.versions[("m", "1")].queue, loop)
            url = f"{fe.url}/both/predict"
            async with http.post(url, json={"input": [1.0, 2.0, 3.0, 4.0]}) as answered:
                assert answered.status == 200
                body = await answered.json()
            assert body["default"] is False
            assert body["models"] == ["echo"]
            assert body["output"] == [1.0, 2.0, 3.0, 4.0]

            latency.set(3.0)
            await fill(fe.frontend.router.versions[("echo", "1")].queue, loop)
            async with http.post(url, json={"input": [5.0, 6.0, 7.0, 8.0]}) as refused:
                await is_429(refused, "queue is full")
            text = fe.metrics()
    finally:
        m_control.set(0.0)
    assert metric(text, "clipper_frontend_shed_requests_total", app="both") == 1
    assert metric(text, "clipper_frontend_passed_over_requests_total", app="both", model="m") == 1
    gc.collect()
    assert "never retrieved" not in caplog.text


async def stand(queue: DeadlineQueue, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    """Make the queue stand: its replica held by one row, a batch timed at ``seconds``
    a row, and two rows behind that have waited ``seconds`` -- about ``seconds`` of
    work that admission sees, whatever the batcher does meanwhile."""
    now = await hold(queue, loop)
    for _ in range(50):  # the estimates are smoothed: forget the batches before
        queue.note_drained(1, seconds)
    queue.put(Chunk(rows(2), now + 5, loop.create_future()), now - seconds)


async def test_selection_passes_over_a_model_that_cannot_answer_in_time(
    routes: Path,
    echo_server: ModelServer,
    latency: LatencyControl,
    m_server: ModelServer,
    m_control: LatencyControl,
) -> None:
    """Exp3 picks one model per query. When one model's queue holds more work than a
    request has left, the request goes to a model that can answer it in time -- not a
    429 while that model idles -- and the passing over is counted. When no model can,
    the request is refused at once, as a single-model app's is."""
    models = {"m": [m_server.address], "echo": [echo_server.address]}
    write_routes(routes, route("pick", models, latency_slo_ms=500, selection={"type": "exp3"}))
    m_control.set(10.0)  # m stays swamped while the 20 requests are sent
    try:
        async with serving(routes, seed=0) as fe, aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            await stand(fe.frontend.router.versions[("m", "1")].queue, loop, 1.0)
            url = f"{fe.url}/pick/predict"
            for i in range(20):  # exp3 starts uniform: m would be drawn for about half
                async with http.post(url, json={"input": [float(i), 1.0, 2.0, 3.0]}) as r:
                    assert r.status == 200, await r.text()
                    body = await r.json()
                assert (body["models"], body["default"]) == (["echo"], False), body
                assert body["output"] == [float(i), 1.0, 2.0, 3.0]
            text = fe.metrics()
            passed_over = metric(
                text, "clipper_frontend_passed_over_requests_total", app="pick", model="m"
            )
            assert passed_over == 20

            latency.set(3.0)
            await stand(fe.frontend.router.versions[("echo", "1")].queue, loop, 1.0)
            async with http.post(url, json={"input": [99.0, 1.0, 2.0, 3.0]}) as refused:  # no hit
                await is_429(refused, "rows queued")
            text = fe.metrics()
    finally:
        m_control.set(0.0)
        latency.set(0.0)
    assert metric(text, "clipper_frontend_shed_requests_total", app="pick", reason="late") == 1
    assert metric(text, "clipper_frontend_passed_over_requests_total", app="pick", model="m") == 20


@pytest.mark.parametrize("paced", [True, False])
async def test_a_refusal_is_held_for_the_apps_objective_when_paced(
    routes: Path, echo_server: ModelServer, latency: LatencyControl, paced: bool
) -> None:
    """Pacing holds a 429 for the app's objective (a client that retries at once then
    sends no faster than it would be served); the hold travels on the refusal, and
    the transports sleep it before answering."""
    from clipper.common.errors import Overloaded

    write_routes(routes, echo_app(echo_server, slo_ms=250))
    async with serving(routes, max_inflight_rows=1, pace_refusals=paced) as fe:
        plane = fe.frontend.plane
        plane.admission.enter(1)  # the frontend holds its one row
        with pytest.raises(Overloaded) as refused:
            plane.door("echo", asyncio.get_running_loop().time())
        plane.admission.leave(1)
        assert refused.value.hold_s == (0.25 if paced else 0.0)
        async with aiohttp.ClientSession() as session:
            plane.admission.enter(1)
            async with session.post(f"{fe.url}/echo/predict", json={"input": [0.0] * 4}) as r:
                assert r.status == 429
                assert "Retry-After" in r.headers
            plane.admission.leave(1)
            async with session.post(f"{fe.url}/echo/predict", json={"input": [0.0] * 4}) as r:
                assert r.status == 200  # and it keeps serving
