"""Lossless widening through a real frontend to a real FP64 model (digits logistic
regression): FP32 and INT32 data are answered, FP64 into an FP32 input is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import joblib
import numpy as np
import pytest

from clipper.testing.frontend import route, same_predictions, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import DigitsModels, digits_batch

FP32_INPUT = {"name": "input", "datatype": "FP32", "shape": [64]}


def tensor(pixels: np.ndarray, datatype: str) -> dict[str, object]:
    data = pixels.tolist()
    return {"name": "input", "datatype": datatype, "shape": list(pixels.shape), "data": data}


def triton_infer(module_name: str, url: str, pixels: np.ndarray, datatype: str) -> np.ndarray:
    """What a tritonclient user sends: a binary (HTTP) or raw (gRPC) tensor."""
    import importlib

    triton = importlib.import_module(module_name)
    client = triton.InferenceServerClient(url=url)
    try:
        narrow = triton.InferInput("input", list(pixels.shape), datatype)
        narrow.set_data_from_numpy(pixels)
        return np.asarray(client.infer("digits", inputs=[narrow]).as_numpy("output"))
    finally:
        client.close()


@pytest.mark.parametrize(("datatype", "dtype"), [("FP32", np.float32), ("INT32", np.int32)])
async def test_oip_json_fp32_and_int32_reach_the_fp64_model(
    routes: Path,
    digits_logistic_server: ModelServer,
    digits_models: DigitsModels,
    datatype: str,
    dtype: type,
) -> None:
    app = route("digits", {"digits-logistic": [digits_logistic_server.address]})
    write_routes(routes, {**app, "latency_slo_ms": 5000})
    pixels = digits_batch(6, dtype, offset=300)  # 0..16: exact in every datatype
    request = {"inputs": [tensor(pixels, datatype)]}
    async with (
        serving(routes) as fe,
        aiohttp.ClientSession() as http,
        http.post(f"{fe.url}/v2/models/digits/infer", json=request) as r,
    ):
        assert r.status == 200, await r.text()
        answer = await r.json()
    assert "default" not in answer["parameters"]
    (output,) = answer["outputs"]
    expected = joblib.load(digits_models.logistic_regression).predict_proba(pixels)
    same_predictions(np.reshape(output["data"], (6, 10)), expected)


@pytest.mark.parametrize(("protocol", "datatype"), [("http", "FP32"), ("grpc", "INT32")])
async def test_tritonclient_binary_and_raw_tensors_are_widened(
    routes: Path,
    digits_logistic_server: ModelServer,
    digits_models: DigitsModels,
    protocol: str,
    datatype: str,
) -> None:
    app = route("digits", {"digits-logistic": [digits_logistic_server.address]})
    write_routes(routes, {**app, "latency_slo_ms": 5000})
    dtype = np.float32 if datatype == "FP32" else np.int32
    pixels = digits_batch(4, dtype, offset=700)
    async with serving(routes) as fe:
        url = fe.url.removeprefix("http://") if protocol == "http" else fe.grpc_address
        output = await asyncio.to_thread(
            triton_infer, f"tritonclient.{protocol}", url, pixels, datatype
        )
    expected = joblib.load(digits_models.logistic_regression).predict_proba(pixels)
    same_predictions(output, expected)


async def test_fp64_into_an_fp32_app_is_refused_naming_both_and_fp32_is_served(
    routes: Path, digits_logistic_server: ModelServer, digits_models: DigitsModels
) -> None:
    app = route("digits", {"digits-logistic": [digits_logistic_server.address]})
    write_routes(routes, {**app, "latency_slo_ms": 5000, "input": FP32_INPUT})
    pixels = digits_batch(2, offset=900)
    wide = {"inputs": [tensor(pixels, "FP64")]}
    narrow = {"inputs": [tensor(pixels.astype(np.float32), "FP32")]}
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        async with http.post(f"{fe.url}/v2/models/digits/infer", json=wide) as r:
            assert r.status == 400
            refused = (await r.json())["error"]
        async with http.post(f"{fe.url}/v2/models/digits/infer", json=narrow) as r:
            assert r.status == 200, await r.text()  # and the frontend goes on serving
            (output,) = (await r.json())["outputs"]
    assert refused.startswith("input 'input' has datatype FP64; the app expects FP32")
    expected = joblib.load(digits_models.logistic_regression).predict_proba(pixels)
    same_predictions(np.reshape(output["data"], (2, 10)), expected)


FP64_INPUT = {"name": "input", "datatype": "FP64", "shape": [64]}


async def test_an_fp64_app_over_an_fp32_model_is_narrowed_only_without_loss(
    routes: Path, digits_models: DigitsModels
) -> None:
    """The app declares FP64, its model FP32: pixels 0..16 survive the conversion and
    are answered; a value FP32 cannot hold (0.1) is refused with 400, not rounded
    silently, and the frontend goes on serving."""
    args = ["--method", "predict_proba", "--threads", "1", "--input-datatype", "FP32"]
    uri = digits_models.logistic_regression
    with ModelServer.start("sklearn", uri, name="digits-fp32", args=args) as server:
        app = route("digits", {"digits-fp32": [server.address]})
        write_routes(routes, {**app, "latency_slo_ms": 5000, "input": FP64_INPUT})
        exact = digits_batch(2, offset=950)
        inexact = exact.copy()
        inexact[0, 0] = 0.1
        async with serving(routes) as fe, aiohttp.ClientSession() as http:
            url = f"{fe.url}/v2/models/digits/infer"
            async with http.post(url, json={"inputs": [tensor(inexact, "FP64")]}) as r:
                assert r.status == 400, await r.text()
                refused = (await r.json())["error"]
            async with http.post(url, json={"inputs": [tensor(exact, "FP64")]}) as r:
                assert r.status == 200, await r.text()
                (output,) = (await r.json())["outputs"]
    assert "takes FP32" in refused
    assert "cannot hold exactly" in refused
    expected = joblib.load(digits_models.logistic_regression).predict_proba(exact)
    same_predictions(np.reshape(output["data"], (2, 10)), expected)
