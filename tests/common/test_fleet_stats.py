"""Reading a fleet of frontends' per-version counters: real frontends, one that is down.

Two frontends in this process serve one app over a real ``noop`` model server;
a third address answers nothing. The read keeps the two documents (each with
its own instance id) and leaves the dead one out; ``fleet_of`` sums both
frontends' counters per version, and nothing at all read gives no reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from clipper.common.fleet_stats import fleet_of, read_documents
from clipper.testing.frontend import route, serving, start_model_servers, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.processes import free_port


@pytest.fixture(scope="module")
def noop() -> Iterator[ModelServer]:
    (server,) = start_model_servers([{"framework": "noop", "name": "m", "args": []}])
    yield server
    server.stop()


async def predict(http: aiohttp.ClientSession, url: str, times: int) -> None:
    for _ in range(times):
        async with http.post(f"{url}/a/predict", json={"input": [1.0, 2.0]}) as r:
            assert r.status == 200, await r.text()


async def test_every_answering_frontend_counts_and_a_dead_one_is_left_out(
    tmp_path: Path, noop: ModelServer
) -> None:
    routes = write_routes(tmp_path / "routes.yaml", route("a", {"m": [noop.address]}))
    async with (
        serving(routes) as one,
        serving(routes) as two,
        aiohttp.ClientSession() as http,
    ):
        await predict(http, one.url, 3)
        await predict(http, two.url, 2)
        dead = f"http://127.0.0.1:{free_port()}"
        documents = await read_documents(http, [one.url, dead, two.url], timeout_s=5)
    assert len(documents) == 2
    assert documents[0]["instance"] != documents[1]["instance"]
    fleet = fleet_of(documents, "m")
    assert fleet is not None
    assert [r.versions["1"].requests for r in fleet.reports] == [3, 2]
    assert fleet.since([])["1"].requests == 5
    assert fleet.slo_ms == 100  # the app's default objective
    assert fleet_of([], "m").reports == ()
