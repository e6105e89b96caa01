"""OIP over gRPC: raw and typed tensors, metadata, errors as statuses."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import joblib
import numpy as np
import pytest

from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs, decode_response
from clipper.testing.frontend import metric, route, same_predictions, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import DigitsModels, digits_batch
from clipper.testing.timeouts import scaled


@pytest.fixture
def digits_routes(routes: Path, digits_logistic_server: ModelServer) -> Path:
    replicas = {"digits-logistic": [digits_logistic_server.address]}
    app = route("digits", replicas, latency_slo_ms=5000)
    return write_routes(routes, app)


async def test_raw_tensors_equal_in_process_sklearn(
    digits_routes: Path, digits_models: DigitsModels
) -> None:
    pixels = digits_batch(9, offset=30)
    expected = joblib.load(digits_models.logistic_regression).predict_proba(pixels)
    request = pb.ModelInferRequest(model_name="digits", id="g-1")
    add_raw_inputs(request, {"input": pixels})
    async with serving(digits_routes) as fe, grpc.aio.insecure_channel(fe.grpc_address) as ch:
        response = await pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(
            request, timeout=scaled(10)
        )
    assert response.model_name == "digits"
    assert response.id == "g-1"
    same_predictions(decode_response(response)["output"], expected)
    assert response.parameters["models"].string_param == "digits-logistic"
    assert "default" not in response.parameters


async def test_typed_tensors_are_accepted(digits_routes: Path, digits_models: DigitsModels) -> None:
    pixels = digits_batch(2)
    expected = joblib.load(digits_models.logistic_regression).predict_proba(pixels)
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64", shape=[2, 64])
    tensor.contents.fp64_contents.extend(pixels.ravel().tolist())
    request = pb.ModelInferRequest(model_name="digits", inputs=[tensor])
    async with serving(digits_routes) as fe, grpc.aio.insecure_channel(fe.grpc_address) as ch:
        response = await pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(
            request, timeout=scaled(10)
        )
    same_predictions(decode_response(response)["output"], expected)


async def test_health_and_metadata(digits_routes: Path) -> None:
    async with serving(digits_routes) as fe, grpc.aio.insecure_channel(fe.grpc_address) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        assert (await stub.ServerLive(pb.ServerLiveRequest())).live
        assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
        assert (await stub.ModelReady(pb.ModelReadyRequest(name="digits"))).ready
        metadata = await stub.ModelMetadata(pb.ModelMetadataRequest(name="digits"))
        assert metadata.name == "digits"
        (tensor,) = metadata.inputs
        assert (tensor.name, tensor.datatype, list(tensor.shape)) == ("input", "FP64", [-1, 64])
        server = await stub.ServerMetadata(pb.ServerMetadataRequest())
        assert server.name == "clipper-frontend"


@pytest.mark.parametrize(
    ("build", "code", "message"),
    [
        (lambda r: setattr(r, "model_name", "nope"), grpc.StatusCode.NOT_FOUND, "unknown app"),
        (lambda r: add_raw_inputs(r, {"input": np.zeros((2, 3))}), None, r"shape \[2, 3\]"),
        (
            lambda r: add_raw_inputs(r, {"input": np.zeros((2, 64), np.int64)}),
            None,
            "datatype INT64; the app expects FP64",
        ),
        (lambda r: add_raw_inputs(r, {"pixels": np.zeros((1, 64))}), None, "unknown input"),
    ],
)
async def test_bad_requests_get_statuses_and_serving_goes_on(
    digits_routes: Path, build: object, code: grpc.StatusCode | None, message: str
) -> None:
    bad = pb.ModelInferRequest(model_name="digits")
    build(bad)  # type: ignore[operator]
    good = pb.ModelInferRequest(model_name="digits")
    add_raw_inputs(good, {"input": digits_batch(1)})
    async with serving(digits_routes) as fe, grpc.aio.insecure_channel(fe.grpc_address) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.ModelInfer(bad, timeout=scaled(10))
        assert error.value.code() == (code or grpc.StatusCode.INVALID_ARGUMENT)
        assert re.search(message, error.value.details() or "")
        response = await stub.ModelInfer(good, timeout=scaled(10))
        assert decode_response(response)["output"].shape == (1, 10)
        counted = metric(fe.metrics(), "clipper_frontend_errors_total", api="oip_grpc")
        assert counted == 1
