"""Clipper's REST API and OIP over REST: real frontend, real sklearn container."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import joblib
import numpy as np

from clipper.testing.frontend import route, same_predictions, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import DigitsModels, digits_batch


def digits_app(server: ModelServer, **fields: object) -> dict[str, object]:
    fields.setdefault("latency_slo_ms", 5000)
    return route("digits", {"digits-logistic": [server.address]}, **fields)


async def test_predict_equals_in_process_sklearn(
    routes: Path, digits_logistic_server: ModelServer, digits_models: DigitsModels
) -> None:
    write_routes(routes, digits_app(digits_logistic_server))
    pixels = digits_batch(25)
    expected = joblib.load(digits_models.logistic_regression).predict_proba(pixels)
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        async with http.post(f"{fe.url}/digits/predict", json={"input": pixels[0].tolist()}) as r:
            assert r.status == 200
            one = await r.json()
        assert one["default"] is False
        assert one["default_explanation"] is None
        assert one["models"] == ["digits-logistic"]
        assert isinstance(one["query_id"], int)
        same_predictions(one["output"], expected[0])

        body = {"input_batch": pixels.tolist()}
        async with http.post(f"{fe.url}/digits/predict", json=body) as r:
            assert r.status == 200
            batch = (await r.json())["batch_predictions"]
        same_predictions([p["output"] for p in batch], expected)
        ids = [p["query_id"] for p in batch]
        assert len(set(ids)) == len(ids)


async def test_oip_infer_equals_in_process_sklearn(
    routes: Path, digits_logistic_server: ModelServer, digits_models: DigitsModels
) -> None:
    write_routes(routes, digits_app(digits_logistic_server))
    pixels = digits_batch(7, offset=100)
    expected = joblib.load(digits_models.logistic_regression).predict_proba(pixels)
    tensor = {"name": "input", "datatype": "FP64", "shape": [7, 64], "data": pixels.tolist()}
    request = {"id": "r-1", "inputs": [tensor]}
    async with (
        serving(routes) as fe,
        aiohttp.ClientSession() as http,
        http.post(f"{fe.url}/v2/models/digits/infer", json=request) as r,
    ):
        assert r.status == 200, await r.text()
        answer = await r.json()
    assert answer["model_name"] == "digits"
    assert answer["id"] == "r-1"
    (output,) = answer["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("output", "FP64", [7, 10])
    same_predictions(np.reshape(output["data"], (7, 10)), expected)
    assert "default" not in answer["parameters"]
    assert answer["parameters"]["models"] == "digits-logistic"


async def test_health_and_metadata(routes: Path, digits_logistic_server: ModelServer) -> None:
    write_routes(routes, digits_app(digits_logistic_server))
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/digits/ready"):
            async with http.get(fe.url + path) as r:
                assert r.status == 200, path
        async with http.get(f"{fe.url}/v2") as r:
            assert (await r.json())["name"] == "clipper-frontend"
        async with http.get(f"{fe.url}/v2/models/digits") as r:
            metadata = await r.json()
    assert metadata["name"] == "digits"
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 64]}]
    assert metadata["outputs"][0]["name"] == "output"


async def test_not_ready_until_a_replica_answers(routes: Path) -> None:
    write_routes(routes, route("ghost", {"m": ["127.0.0.1:1"]}))
    async with serving(routes, ready=False) as fe, aiohttp.ClientSession() as http:
        async with http.get(f"{fe.url}/v2/health/ready") as r:
            assert r.status == 503
        async with http.get(f"{fe.url}/v2/models/ghost/ready") as r:
            assert r.status == 503
        # Still ready to take queries (and answer defaults): a load balancer keeps it.
        async with http.get(f"{fe.url}/readyz") as r:
            assert (r.status, await r.json()) == (200, {"ready": True})
        async with http.post(f"{fe.url}/ghost/predict", json={"input": [1]}) as r:
            answer = await r.json()
    assert answer["default"] is True
    assert answer["default_explanation"].startswith("unavailable")


async def test_request_id_is_echoed_and_generated(
    routes: Path, digits_logistic_server: ModelServer
) -> None:
    write_routes(routes, digits_app(digits_logistic_server))
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        headers = {"X-Request-ID": "abc-123"}
        async with http.get(f"{fe.url}/v2/health/live", headers=headers) as r:
            assert r.headers["X-Request-ID"] == "abc-123"
        async with http.get(f"{fe.url}/v2/health/live") as r:
            assert r.headers["X-Request-ID"]
