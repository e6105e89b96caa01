"""Served predictions equal in-process ones, for every framework, under concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs, decode_response
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import DigitsModels, digits_batch
from clipper.testing.processes import ClipperProcess, free_port
from clipper.testing.timeouts import scaled


@pytest.fixture(scope="module")
def torch_server(digits_models: DigitsModels) -> Iterator[ModelServer]:
    """The TorchScript MLP, asked to run on CUDA, or on CPU when there is none."""
    uri = digits_models.torch_mlp.torchscript
    args = ["--input-shape", "-1,64", "--device", "cuda", "--cpu-fallback", "true"]
    args += ["--threads", "1", "--version", "3"]
    with ModelServer.start("pytorch", uri, name="digits-mlp", args=args) as server:
        yield server


@pytest.fixture(scope="module")
def onnx_server(digits_models: DigitsModels) -> Iterator[ModelServer]:
    args = ["--device", "auto", "--threads", "1"]
    with ModelServer.start("onnx", digits_models.onnx, name="digits-onnx", args=args) as server:
        yield server


@pytest.mark.parametrize("rows", [1, 7, 256])
def test_sklearn_served_equals_in_process(
    digits_logistic_server: ModelServer, digits_models: DigitsModels, rows: int
) -> None:
    import joblib

    x = digits_batch(rows, offset=rows)
    served = digits_logistic_server.infer({"input": x})["output"]
    assert served.shape == (rows, 10)
    expected = joblib.load(digits_models.logistic_regression).predict_proba(x)
    np.testing.assert_array_equal(served, expected)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("rows", [1, 32, 300])
def test_torch_served_equals_in_process(
    torch_server: ModelServer, digits_models: DigitsModels, rows: int
) -> None:
    import torch

    x = digits_batch(rows, np.float32)
    served = torch_server.infer({"input": x})["output"]
    with torch.inference_mode():
        expected = torch.jit.load(str(digits_models.torch_mlp.torchscript))(torch.from_numpy(x))
    assert served.shape == (rows, 10)
    np.testing.assert_allclose(served, expected.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rows", [1, 50])
def test_onnx_served_equals_in_process(
    onnx_server: ModelServer, digits_models: DigitsModels, rows: int
) -> None:
    import onnxruntime

    x = digits_batch(rows, np.float32)
    served = onnx_server.infer({"input": x})["output"]
    session = onnxruntime.InferenceSession(str(digits_models.onnx))
    np.testing.assert_allclose(served, session.run(None, {"input": x})[0], rtol=1e-6)


def test_cuda_asked_for_but_absent_runs_on_cpu_only_with_the_opt_in(
    torch_server: ModelServer,
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so there is no fallback to see")
    metadata = torch_server.stub.ModelMetadata(pb.ModelMetadataRequest(name="digits-mlp"))
    assert metadata.properties["device"] == "cpu"
    logs = torch_server.logs()
    assert "WARNING" in logs
    assert "CUDA was asked for but is not available" in logs


def test_cuda_asked_for_but_absent_never_becomes_ready(digits_models: DigitsModels) -> None:
    """A real server on this GPU-less machine: never SERVING nor ready, then exit 1
    with the reason and the way out."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so the no-GPU path cannot be seen")
    port = free_port()
    argv = ["model", "serve", "--framework", "pytorch", "--name", "no-gpu", "--port", str(port)]
    argv += ["--uri", str(digits_models.torch_mlp.torchscript), "--input-shape", "-1,64"]
    process = ClipperProcess([*argv, "--device", "cuda", "--threads", "1"])
    seen: set[tuple[int, bool]] = set()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            deadline = time.monotonic() + scaled(90)
            while process.alive() and time.monotonic() < deadline:
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    ready = stub.ServerReady(pb.ServerReadyRequest(), timeout=1).ready
                    seen.add((status, ready))
                except grpc.RpcError:
                    pass  # not listening yet, or already gone
                time.sleep(0.05)
        code = process.wait(timeout=30)
    finally:
        process.stop()
    logs = process.logs()
    assert code == 1, logs
    assert "device cuda was asked for but no GPU is usable" in logs
    assert "cpuFallback: true" in logs
    assert (health_pb2.HealthCheckResponse.SERVING, True) not in seen
    assert all(not ready for _, ready in seen)


def test_metadata_describes_the_model(torch_server: ModelServer) -> None:
    stub = torch_server.stub
    metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="digits-mlp", version="3"))
    assert (metadata.name, list(metadata.versions)) == ("digits-mlp", ["3"])
    assert metadata.platform == "pytorch_torchscript"
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        ("input", "FP32", [-1, 64])
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [
        ("output", "FP32", [-1, 10])
    ]
    server = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert server.name == "clipper-model"


def test_health_and_readiness(onnx_server: ModelServer) -> None:
    stub = onnx_server.stub
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="digits-onnx")).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="digits-onnx", version="1")).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="digits-onnx", version="2")).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="other")).ready
    health = health_pb2_grpc.HealthStub(onnx_server.channel)
    for service in ("", "inference.GRPCInferenceService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_typed_contents_are_accepted_too(digits_logistic_server: ModelServer) -> None:
    x = digits_batch(3)
    request = pb.ModelInferRequest(model_name="digits-logistic", id="typed-1")
    tensor = request.inputs.add(name="input", datatype="FP64", shape=[3, 64])
    tensor.contents.fp64_contents.extend(x.reshape(-1).tolist())
    response = digits_logistic_server.stub.ModelInfer(request)
    assert response.id == "typed-1"
    assert (response.model_name, response.model_version) == ("digits-logistic", "1")
    assert len(response.raw_output_contents) == 1  # answers always go out raw
    raw = digits_logistic_server.infer({"input": x})["output"]
    np.testing.assert_array_equal(decode_response(response)["output"], raw)


def test_model_stream_infer_is_unimplemented_without_an_error_in_the_log(
    digits_logistic_server: ModelServer,
) -> None:
    """The proto declares Triton's stream for the frontend; a container refuses it cleanly."""
    request = digits_logistic_server.request({"input": digits_batch(1)})
    with pytest.raises(grpc.RpcError) as refused:
        list(digits_logistic_server.stub.ModelStreamInfer(iter([request]), timeout=scaled(10)))
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
    assert "ModelStreamInfer is the frontend's" in refused.value.details()  # type: ignore[attr-defined]
    assert "NotImplementedError" not in digits_logistic_server.logs()


def test_requested_outputs_are_honoured(digits_logistic_server: ModelServer) -> None:
    request = digits_logistic_server.request({"input": digits_batch(2)})
    request.outputs.add(name="output")
    response = digits_logistic_server.stub.ModelInfer(request)
    assert [t.name for t in response.outputs] == ["output"]


async def test_concurrent_requests_each_get_their_own_answer(
    digits_logistic_server: ModelServer, digits_models: DigitsModels
) -> None:
    import joblib

    estimator = joblib.load(digits_models.logistic_regression)
    batches = [digits_batch(1 + i % 9, offset=17 * i) for i in range(64)]
    async with grpc.aio.insecure_channel(digits_logistic_server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        async def infer(x: np.ndarray) -> np.ndarray:
            request = pb.ModelInferRequest(model_name="digits-logistic")
            add_raw_inputs(request, {"input": x})
            return decode_response(await stub.ModelInfer(request, timeout=scaled(60)))["output"]

        answers = await asyncio.gather(*(infer(x) for x in batches))
    for x, answer in zip(batches, answers, strict=True):
        np.testing.assert_array_equal(answer, estimator.predict_proba(x))
