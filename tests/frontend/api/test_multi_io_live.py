"""A model with two inputs and two outputs behind a real frontend.

``sum_and_label`` (``clipper.testing.functions``) takes ``a`` (rows of 4) and
``b`` (a scale per row) and answers ``total`` (FP64) and ``sign`` (BYTES). The
clients are the standard ones: tritonclient over HTTP and gRPC, and plain HTTP
for Clipper's REST API.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest
import yaml

from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs, decode_response
from clipper.testing.frontend import metric, route, serving, start_model_servers, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.timeouts import scaled

A = np.array([[1.0, 2.0, 3.0, 4.0], [-1.0, -2.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]])
B = np.array([[2.0], [3.0], [0.0]])
TOTAL = [20.0, -9.0, 0.0]
SIGN = ["pos", "neg", "zero"]
DEFAULT = {"total": -1.0, "sign": "n/a"}


@pytest.fixture(scope="module")
def servers() -> Iterator[list[ModelServer]]:
    specs = [
        {
            "framework": "python",
            "uri": "clipper.testing.functions:sum_and_label",
            "name": name,
            "args": ["--threads", "1"],
        }
        for name in ("two", "twin")
    ]
    started = start_model_servers(specs)
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def two_by_two(servers: list[ModelServer]) -> ModelServer:
    return servers[0]


def app(address: str, **fields: Any) -> dict[str, Any]:
    return route("two", {"two": [address]}, latency_slo_ms=5000, **fields)


def triton_infer(module_name: str, url: str, outputs: list[str] | None) -> dict[str, np.ndarray]:
    triton = importlib.import_module(module_name)
    client = triton.InferenceServerClient(url=url)
    try:
        a = triton.InferInput("a", list(A.shape), "FP64")
        a.set_data_from_numpy(A)
        b = triton.InferInput("b", list(B.shape), "FP64")
        b.set_data_from_numpy(B)
        requested = [triton.InferRequestedOutput(name) for name in outputs or []]
        result = client.infer("two", inputs=[a, b], outputs=requested or None)
        response = result.get_response()
        names = [o["name"] for o in response["outputs"]] if isinstance(response, dict) else None
        if names is None:
            names = [o.name for o in response.outputs]
        return {name: result.as_numpy(name) for name in names}
    finally:
        client.close()


def texts(values: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.reshape(-1)]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
async def test_tritonclient_sends_both_inputs_and_gets_both_outputs(
    protocol: str, routes: Path, two_by_two: ModelServer
) -> None:
    write_routes(routes, app(two_by_two.address))
    async with serving(routes) as fe:
        url = fe.url.removeprefix("http://") if protocol == "http" else fe.grpc_address
        module = f"tritonclient.{protocol}"
        both = await asyncio.to_thread(triton_infer, module, url, None)
        only = await asyncio.to_thread(triton_infer, module, url, ["sign"])
    assert set(both) == {"total", "sign"}
    np.testing.assert_allclose(both["total"], TOTAL)
    assert texts(both["sign"]) == SIGN
    assert set(only) == {"sign"}
    assert texts(only["sign"]) == SIGN


def oip_body(inputs: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [
            {"name": n, "datatype": "FP64", "shape": list(v.shape), "data": v.ravel().tolist()}
            for n, v in inputs.items()
        ]
    }
    if outputs is not None:
        body["outputs"] = [{"name": name} for name in outputs]
    return body


async def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status, await response.json()


async def test_clipper_rest_answers_the_first_output_or_the_named_one(
    routes: Path, two_by_two: ModelServer
) -> None:
    write_routes(routes, app(two_by_two.address))
    async with serving(routes) as fe:
        predict = f"{fe.url}/two/predict"
        first = await post(predict, {"input": {"a": A[0].tolist(), "b": B[0].tolist()}})
        named = await post(
            predict,
            {"input_batch": {"a": A.tolist(), "b": B.tolist()}, "output": "sign"},
        )
        unknown = await post(
            predict, {"input": {"a": A[0].tolist(), "b": B[0].tolist()}, "output": "nope"}
        )
    assert first[0] == 200
    assert first[1]["output"] == TOTAL[0]
    assert not first[1]["default"]
    assert named[0] == 200
    assert [p["output"] for p in named[1]["batch_predictions"]] == SIGN
    assert unknown[0] == 400
    assert "unknown output 'nope'" in unknown[1]["error"]
    assert "'total', 'sign'" in unknown[1]["error"]


async def test_unknown_outputs_and_missing_inputs_are_the_clients_errors(
    routes: Path, two_by_two: ModelServer
) -> None:
    write_routes(routes, app(two_by_two.address))
    async with serving(routes) as fe:
        infer = f"{fe.url}/v2/models/two/infer"
        unknown = await post(infer, oip_body({"a": A, "b": B}, ["total", "nope"]))
        missing = await post(infer, oip_body({"a": A}))
        served = await post(infer, oip_body({"a": A, "b": B}, ["total"]))
        async with grpc.aio.insecure_channel(fe.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            request = pb.ModelInferRequest(model_name="two")
            add_raw_inputs(request, {"a": A, "b": B})
            request.outputs.add().name = "nope"
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.ModelInfer(request, timeout=scaled(10))
    assert unknown[0] == 400
    assert "unknown output 'nope'" in unknown[1]["error"]
    assert missing[0] == 400
    assert "'b'" in missing[1]["error"]
    assert served[0] == 200  # the frontend keeps serving
    assert [o["name"] for o in served[1]["outputs"]] == ["total"]
    assert served[1]["outputs"][0]["data"] == TOTAL
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown output 'nope'" in (raised.value.details() or "")


async def test_a_repeated_multi_input_row_is_a_cache_hit(
    routes: Path, two_by_two: ModelServer
) -> None:
    write_routes(routes, app(two_by_two.address))
    async with serving(routes) as fe:
        infer = f"{fe.url}/v2/models/two/infer"
        first = await post(infer, oip_body({"a": A[:1], "b": B[:1]}))
        again = await post(infer, oip_body({"a": A[:1], "b": B[:1]}))
        other_b = await post(infer, oip_body({"a": A[:1], "b": B[1:2]}))
        text = fe.metrics()
    assert first[1]["outputs"] == again[1]["outputs"]
    assert {o["name"]: o["data"] for o in again[1]["outputs"]} == {
        "total": [TOTAL[0]],
        "sign": ["pos"],
    }
    assert {o["name"]: o["data"] for o in other_b[1]["outputs"]}["total"] == [30.0]
    assert metric(text, "clipper_frontend_cache_hits_total", app="two") == 1  # b is in the key
    assert metric(text, "clipper_frontend_cache_misses_total", app="two") == 2


def dead_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def first_default_entry(routes: Path) -> str:
    """The first entry of the app's default mapping, as the routes file holds it."""
    loaded = yaml.safe_load(routes.read_text())["apps"]["two"]["default_output"]
    return str(next(iter(loaded)))


async def test_a_default_for_a_multi_output_app_is_well_formed(routes: Path) -> None:
    write_routes(routes, app(dead_address(), default_output=DEFAULT))
    async with serving(routes, ready=False) as fe:
        oip = await post(f"{fe.url}/v2/models/two/infer", oip_body({"a": A, "b": B}))
        rest = await post(
            f"{fe.url}/two/predict",
            {"input": {"a": A[0].tolist(), "b": B[0].tolist()}, "output": "sign"},
        )
        first = await post(f"{fe.url}/two/predict", {"input": {"a": A[0].tolist(), "b": [1.0]}})
        async with grpc.aio.insecure_channel(fe.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            request = pb.ModelInferRequest(model_name="two")
            add_raw_inputs(request, {"a": A, "b": B})
            reply = decode_response(await stub.ModelInfer(request, timeout=scaled(10)))
    status, body = oip
    assert status == 200
    assert body["parameters"]["default"] is True
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["total"]["shape"] == [3]
    assert outputs["total"]["data"] == [-1.0] * 3
    assert outputs["sign"]["datatype"] == "BYTES"
    assert outputs["sign"]["data"] == ["n/a"] * 3
    assert rest[0] == 200
    assert rest[1]["default"]
    assert rest[1]["output"] == "n/a"
    # no output declared: the mapping's first entry (as the routes file has it) is primary
    assert first[1]["output"] == DEFAULT[first_default_entry(routes)]
    assert set(reply) == {"total", "sign"}
    np.testing.assert_array_equal(reply["total"], [-1.0] * 3)
    assert texts(reply["sign"]) == ["n/a"] * 3


async def test_an_ensemble_combines_the_primary_output_and_carries_the_others(
    routes: Path, servers: list[ModelServer]
) -> None:
    models = {server.name: [server.address] for server in servers}
    write_routes(routes, route("both", models, latency_slo_ms=5000, selection={"type": "exp4"}))
    async with serving(routes) as fe:
        status, body = await post(f"{fe.url}/v2/models/both/infer", oip_body({"a": A, "b": B}))
        named = await post(
            f"{fe.url}/both/predict",
            {"input": {"a": A[1].tolist(), "b": B[1].tolist()}, "output": "sign"},
        )
    assert status == 200
    assert body["parameters"]["models"] == "two,twin"
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    assert outputs == {"total": TOTAL, "sign": SIGN}
    assert named[1]["output"] == "neg"
    assert named[1]["confidence"] == 1.0
