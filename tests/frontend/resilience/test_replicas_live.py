"""Replicas fail, come and go, and versions share traffic, under load.

The frontend under test serves on the test's own event loop, so everything that
blocks (starting and stopping model servers: process waits and polling) runs in
a thread; a blocked loop would stall the health checks and batches under test.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.testing.frontend import (
    hammer,
    metric,
    route,
    serving,
    start_model_servers,
    write_routes,
)
from clipper.testing.latency import URI, LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.waiting import polls

ARGS = ["--input-datatype", "FP64", "--input-shape=-1,4", "--threads", "1"]


def echo_spec(control: LatencyControl, version: str = "1") -> dict[str, object]:
    args = [*ARGS, "--version", version]
    return {"framework": "python", "uri": URI, "name": "m", "args": args, "env": control.env}


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> LatencyControl:
    return LatencyControl(tmp_path_factory.mktemp("m-latency") / "latency")


@pytest.fixture(scope="module")
def replicas(control: LatencyControl) -> Iterator[list[ModelServer]]:
    """m@1 twice and m@2 once, all echoing rows after ``control``'s latency."""
    servers = start_model_servers([echo_spec(control), echo_spec(control), echo_spec(control, "2")])
    yield servers
    for server in servers:
        server.stop()


def rows(n: int, start: int = 0) -> list[list[float]]:
    return [[float(start + i), 1.0, 2.0, 3.0] for i in range(n)]


def app(versions: list[dict[str, object]], **fields: object) -> dict[str, object]:
    fields.setdefault("latency_slo_ms", 3000)
    fields.setdefault("cache", {"enabled": False})
    return route("app", {"m": versions}, **fields)


async def wait_metric(fe: object, name: str, at_least: float, **labels: str) -> None:
    async for _ in polls(10):
        if metric(fe.metrics(), name, **labels) >= at_least:  # type: ignore[attr-defined]
            return
    raise TimeoutError(f"{name}{labels} never reached {at_least}")


async def test_killing_one_of_two_replicas_under_load_loses_nothing_but_retry_exhaustion(
    routes: Path, tmp_path: Path
) -> None:
    control = LatencyControl(tmp_path / "latency")
    control.set(0.005)  # batches are in flight most of the time
    specs = [echo_spec(control), echo_spec(control)]
    doomed, survivor = await asyncio.to_thread(start_model_servers, specs)
    try:
        replicas = [doomed.address, survivor.address]
        write_routes(routes, app([{"version": "1", "replicas": replicas}]))
        async with serving(routes) as fe:
            load = asyncio.ensure_future(hammer(fe.url, "app", rows(1500), concurrency=16))
            await wait_metric(fe, "clipper_frontend_batch_size_count", 20, replica=doomed.address)
            doomed.process.signal(signal.SIGKILL)
            answers = await load
            text = fe.metrics()
    finally:
        await asyncio.gather(asyncio.to_thread(doomed.stop), asyncio.to_thread(survivor.stop))
    assert all(status == 200 for status, _ in answers)
    lost = [a for _, a in answers if a["default"]]
    for answer in lost:
        assert answer["default_explanation"].startswith("retries_exhausted"), answer
    exhausted = metric(text, "clipper_frontend_retries_exhausted_rows_total")
    assert exhausted == len(lost)
    assert len(lost) == 0, f"{len(lost)} queries lost to retry exhaustion"
    # The killed replica had batches in flight: they were retried on the survivor.
    assert metric(text, "clipper_frontend_retried_rows_total") >= 1
    for (_, answer), row in zip(answers, rows(1500), strict=True):
        assert answer["output"] == row
    assert metric(text, "clipper_frontend_replica_up", replica=doomed.address) == 0
    served_after = metric(text, "clipper_frontend_batch_size_sum", replica=survivor.address)
    assert served_after > 0


async def test_a_removed_replica_drains_and_an_added_one_takes_over(
    routes: Path, replicas: list[ModelServer], control: LatencyControl
) -> None:
    first, second, _ = replicas
    control.set(0.01)
    write_routes(routes, app([{"version": "1", "replicas": [first.address]}]))
    async with serving(routes) as fe:
        load = asyncio.ensure_future(hammer(fe.url, "app", rows(800), concurrency=8))
        await wait_metric(fe, "clipper_frontend_batch_size_count", 10, replica=first.address)
        write_routes(routes, app([{"version": "1", "replicas": [second.address]}]))
        await wait_metric(fe, "clipper_frontend_batch_size_count", 10, replica=second.address)
        answers = await load
        text = fe.metrics()
    control.set(0.0)
    assert all(status == 200 and not a["default"] for status, a in answers)
    assert [a["output"] for _, a in answers] == rows(800)
    # The removed replica's metrics left with it once it had drained.
    assert f'replica="{first.address}"' not in text


async def test_traffic_weights_between_versions_are_honoured(
    routes: Path, replicas: list[ModelServer], control: LatencyControl
) -> None:
    v1, _, v2 = replicas
    control.set(0.0)
    split = [
        {"version": "1", "weight": 80, "replicas": [v1.address]},
        {"version": "2", "weight": 20, "replicas": [v2.address]},
    ]
    write_routes(routes, app(split))
    async with serving(routes, seed=5) as fe:
        await hammer(fe.url, "app", rows(400), concurrency=8)
        text = fe.metrics()
        share = metric(text, "clipper_frontend_batch_size_sum", version="2") / 400
        assert share == pytest.approx(0.2, abs=0.07)  # 3 binomial standard deviations

        swapped = [{**split[0], "weight": 0}, {**split[1], "weight": 100}]  # a version swap
        write_routes(routes, app(swapped))
        async for _ in polls(10):
            if fe.frontend.router.apps["app"].models["m"].versions[0][0].version == "2":
                break
        before = metric(fe.metrics(), "clipper_frontend_batch_size_sum", version="1")
        answers = await hammer(fe.url, "app", rows(100, start=1000), concurrency=8)
        after = metric(fe.metrics(), "clipper_frontend_batch_size_sum", version="1")
    assert all(not a["default"] for _, a in answers)
    assert after == before


async def test_an_ensemble_answers_at_the_deadline_with_the_models_that_made_it(
    routes: Path,
    replicas: list[ModelServer],
    control: LatencyControl,
    echo_server: ModelServer,
    latency: LatencyControl,
) -> None:
    control.set(0.0)
    latency.set(3.0)  # "echo" is a straggler
    models = {"m": [replicas[0].address], "echo": [echo_server.address]}
    ensemble = route("both", models, latency_slo_ms=1000, selection={"type": "exp4"})
    write_routes(routes, ensemble)
    async with serving(routes) as fe:
        ((status, answer),) = await hammer(fe.url, "both", rows(1), concurrency=1)
    assert status == 200
    assert answer["default"] is False
    assert answer["models"] == ["m"]
    assert answer["output"] == rows(1)[0]
    assert answer["confidence"] == 0.5  # one of the two selected models agrees


async def test_a_replica_that_comes_back_is_found_by_its_health_checks(
    routes: Path, tmp_path: Path
) -> None:
    control = LatencyControl(tmp_path / "latency")
    (server,) = await asyncio.to_thread(start_model_servers, [echo_spec(control)])
    port = server.port
    write_routes(routes, app([{"version": "1", "replicas": [server.address]}]))
    try:
        async with serving(routes) as fe:
            server.process.signal(signal.SIGKILL)
            await asyncio.to_thread(server.stop)  # the frontend serves on this loop meanwhile
            async for _ in polls(10):
                if metric(fe.metrics(), "clipper_frontend_replica_up", replica=server.address) == 0:
                    break
            ((_, down),) = await hammer(fe.url, "app", rows(1), concurrency=1)
            assert down["default_explanation"].startswith("unavailable"), down

            again = [{**echo_spec(control), "port": port}]
            (server,) = await asyncio.to_thread(start_model_servers, again)
            await fe.wait_ready()
            ((_, back),) = await hammer(fe.url, "app", rows(1), concurrency=1)
    finally:
        await asyncio.to_thread(server.stop)
    assert back["default"] is False
    assert back["output"] == rows(1)[0]
