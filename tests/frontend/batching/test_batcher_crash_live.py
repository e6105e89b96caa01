"""A batcher that crashes fails the batch it held, logs why, and serves on.

The crash has a real cause: a model whose output width depends on its batch
(``clipper.testing.functions:batch_similarity``). A request of 5 rows with
batches of at most 3 is split in two; the halves come back 3 and 2 columns wide
and cannot be reassembled, so delivering the second batch raises inside the
batcher. Before the batcher was supervised, that ended its task silently: the
request, and every later one, waited for its deadline and got the SLO default.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from clipper.testing.asyncio_checks import unretrieved_task_errors
from clipper.testing.frontend import metric, route, serving, write_routes
from clipper.testing.model_servers import ModelServer

ARGS = ["--input-datatype", "FP64", "--input-shape=-1,2", "--threads", "1"]


@pytest.fixture(scope="module")
def similarity_server() -> Iterator[ModelServer]:
    uri = "clipper.testing.functions:batch_similarity"
    with ModelServer.start("python", uri, name="sim", args=ARGS) as server:
        yield server


async def predict(http: aiohttp.ClientSession, url: str, rows: list[list[float]]) -> list[dict]:
    async with http.post(f"{url}/sim/predict", json={"input_batch": rows}) as r:
        assert r.status == 200
        return list((await r.json())["batch_predictions"])


async def test_a_crashing_batcher_fails_its_batch_clearly_logs_and_serves_the_next(
    routes: Path, similarity_server: ModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    batching = {"adaptive": False, "max_batch_size": 3}
    app = route(
        "sim",
        {"sim": [similarity_server.address]},
        batching={"sim": batching},
        latency_slo_ms=3000,
        cache={"enabled": False},
        default_output=-1,
    )
    write_routes(routes, app)
    with caplog.at_level(logging.WARNING):
        async with serving(routes) as fe, aiohttp.ClientSession() as http:
            split = await predict(http, fe.url, [[1.0, 0.0]] * 5)
            after = await predict(http, fe.url, [[1.0, 2.0], [3.0, 4.0]])
            text = fe.metrics()
        errors = unretrieved_task_errors(caplog)
    # Every caller of the crashed batch hears why, at once (not the SLO default).
    for answer in split:
        assert answer["default"] is True
        explanation = answer["default_explanation"]
        assert explanation.startswith("model_error: the batch for replica")
        assert "failed in the frontend (ValueError: could not broadcast" in explanation
    # The batcher was restarted: the next request gets the model's answer.
    assert [a["default"] for a in after] == [False, False]
    assert [a["output"] for a in after] == [[5.0, 11.0], [11.0, 25.0]]
    crashes = [r for r in caplog.records if r.getMessage().startswith("task batcher died")]
    assert len(crashes) == 1
    assert crashes[0].exc_info is not None  # the traceback is in the log
    assert metric(text, "clipper_frontend_task_crashes_total", task="batcher") == 1
    assert errors == []
