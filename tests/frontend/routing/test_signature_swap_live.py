"""A learned input signature follows the models: swap one and its input is served.

The app sets no ``input``, so its signature is learned from the containers'
metadata. Swapping the app's model (or the model's version) for one with
another input must not leave the old signature in force: requests valid for
the new model would get 400 until the frontend restarted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from clipper.testing.frontend import route, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.waiting import polls

OLD_ROW = [1.0, 2.0, 3.0, 4.0]  # the echo model: FP64 rows of 4


@pytest.fixture(scope="module")
def echo_v2() -> Iterator[ModelServer]:
    """Version 2 of ``echo``, with another input: INT32 rows of 3."""
    args = ["--version", "2", "--input-datatype", "INT32", "--input-shape=-1,3", "--threads", "1"]
    uri = "clipper.testing.functions:identity"
    with ModelServer.start("python", uri, name="echo", args=args) as server:
        yield server


async def predict(http: aiohttp.ClientSession, url: str, row: list[Any]) -> tuple[int, dict]:
    async with http.post(f"{url}/swap/predict", json={"input": row}) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("swap", ["version", "model"])
async def test_a_swapped_model_s_input_is_accepted_right_after_the_change(
    routes: Path,
    echo_server: ModelServer,
    echo_v2: ModelServer,
    digits_logistic_server: ModelServer,
    swap: str,
) -> None:
    app = {"latency_slo_ms": 5000, "cache": {"enabled": False}}
    write_routes(routes, route("swap", {"echo": [echo_server.address]}, **app))
    if swap == "version":
        model, version = "echo", "2"
        new = route("swap", {"echo": [{"version": "2", "replicas": [echo_v2.address]}]}, **app)
        new_row: list[Any] = [1, 2, 3]
        new_input = {"name": "input", "datatype": "INT32", "shape": [-1, 3]}
    else:
        model, version = "digits-logistic", "1"
        new = route("swap", {model: [digits_logistic_server.address]}, **app)
        new_row = np.linspace(0.0, 16.0, 64).tolist()
        new_input = {"name": "input", "datatype": "FP64", "shape": [-1, 64]}
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        status, answer = await predict(http, fe.url, OLD_ROW)
        assert (status, answer["output"]) == (200, OLD_ROW)
        status, _ = await predict(http, fe.url, new_row)
        assert status == 400  # the old model's signature is learned and enforced

        write_routes(routes, new)
        router = fe.frontend.router
        async for _ in polls(20):  # the new table applied, its replica up
            runtime = router.versions.get((model, version))
            if runtime is not None and runtime.up and model in router.apps["swap"].models:
                break
        else:
            raise TimeoutError("the new model never came up")

        status, answer = await predict(http, fe.url, new_row)
        assert status == 200, answer
        assert answer["default"] is False
        assert answer["models"] == [model]
        status, error = await predict(http, fe.url, OLD_ROW)
        assert status == 400
        async with http.get(f"{fe.url}/v2/models/swap") as r:
            metadata = await r.json()
    assert metadata["inputs"] == [new_input]
    assert "expected" in error["error"]
