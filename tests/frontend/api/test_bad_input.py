"""Bad requests get a 4xx with an OIP error body, and the frontend keeps serving."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from clipper.testing.frontend import metric, route, serving, write_routes
from clipper.testing.model_servers import ModelServer

GOOD_ROW = [0.0, 1.0, 2.0, 3.0]
INFER = "/v2/models/echo/infer"


def oip(data: object, shape: list[int], datatype: str = "FP64", name: str = "input") -> dict:
    return {"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": data}]}


CASES = [
    # (method, path, body, status, message)
    ("POST", "/echo/predict", b"{not json", 400, "not valid JSON"),
    ("POST", "/echo/predict", b"[1, 2]", 400, "must be a JSON object"),
    ("POST", "/echo/predict", {"inputs": GOOD_ROW}, 400, 'needs "input"'),
    ("POST", "/echo/predict", {"input": [1, 2, 3]}, 400, r"shape \[3\]; expected one row"),
    ("POST", "/echo/predict", {"input": ["a", "b", "c", "d"]}, 400, "text values; expected FP64"),
    ("POST", "/echo/predict", {"input_batch": [[1, 2, 3, 4], [1]]}, 400, "not a regular array"),
    ("POST", "/nope/predict", {"input": GOOD_ROW}, 404, "unknown app 'nope'"),
    ("POST", "/echo/feedback", {"query_id": 12345, "label": 1}, 404, "unknown query id 12345"),
    ("POST", "/echo/feedback", {"query_id": "x", "label": 1}, 400, "must be an integer"),
    ("POST", "/echo/feedback", {"query_id": 1}, 400, 'needs a "label"'),
    ("POST", INFER, oip(GOOD_ROW, [1, 4], "INT64"), 400, "datatype INT64; the app expects FP64"),
    ("POST", INFER, oip(GOOD_ROW, [2, 4]), 400, "needs 8"),
    ("POST", INFER, oip(GOOD_ROW, [1, 4], name="x"), 400, "unknown input 'x'"),
    ("POST", INFER, {"inputs": []}, 400, '"inputs"'),
    ("POST", "/v2/models/nope/infer", oip(GOOD_ROW, [1, 4]), 404, "unknown app"),
    ("GET", "/v2/models/nope", None, 404, "unknown app"),
    ("GET", "/echo/predict", None, 405, "not allowed"),
    ("GET", "/no/such/route/here", None, 404, "no route"),
]


@pytest.fixture
def echo_routes(routes: Path, echo_server: ModelServer) -> Path:
    return write_routes(routes, route("echo", {"echo": [echo_server.address]}, latency_slo_ms=5000))


async def test_each_bad_request_gets_its_error_and_serving_goes_on(echo_routes: Path) -> None:
    async with serving(echo_routes) as fe, aiohttp.ClientSession() as http:
        for method, path, body, status, message in CASES:
            kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
            async with http.request(method, fe.url + path, **kwargs) as r:
                assert r.status == status, (path, body, await r.text())
                assert r.content_type == "application/json"
                error = (await r.json())["error"]
                assert re.search(message, error), (message, error)
            async with http.post(f"{fe.url}/echo/predict", json={"input": GOOD_ROW}) as r:
                assert r.status == 200
                assert (await r.json())["output"] == GOOD_ROW
        text = fe.metrics()
    assert metric(text, "clipper_frontend_errors_total", code="400") >= 10
    assert metric(text, "clipper_frontend_errors_total", code="404") >= 4


async def test_a_body_over_the_limit_is_413(echo_routes: Path) -> None:
    async with serving(echo_routes, max_body_bytes=4096) as fe, aiohttp.ClientSession() as http:
        big = {"input_batch": [GOOD_ROW] * 1000}
        async with http.post(f"{fe.url}/echo/predict", json=big) as r:
            assert r.status == 413
            assert "limit is 4096" in (await r.json())["error"]

        async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to check
            for _ in range(100):
                yield b" " * 100

        async with http.post(f"{fe.url}/echo/predict", data=body()) as r:
            assert r.status == 413
            assert "over the limit of 4096" in (await r.json())["error"]
        async with http.post(f"{fe.url}/echo/predict", json={"input": GOOD_ROW}) as r:
            assert r.status == 200
