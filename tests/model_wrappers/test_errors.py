"""Bad requests get an error a user can act on, and the server keeps serving."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import numpy as np
import pytest

from clipper.common.protocol import pb
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits_batch
from clipper.testing.processes import ClipperProcess
from clipper.testing.timeouts import scaled

Build = Callable[[], pb.ModelInferRequest]
NAME = "digits-logistic"


def raw(shape: list[int], data: bytes, datatype: str = "FP64", name: str = "input") -> Build:
    def build() -> pb.ModelInferRequest:
        request = pb.ModelInferRequest(model_name=NAME)
        request.inputs.add(name=name, datatype=datatype, shape=shape)
        request.raw_input_contents.append(data)
        return request

    return build


def typed(shape: list[int], values: list[float]) -> Build:
    def build() -> pb.ModelInferRequest:
        request = pb.ModelInferRequest(model_name=NAME)
        tensor = request.inputs.add(name="input", datatype="FP64", shape=shape)
        tensor.contents.fp64_contents.extend(values)
        return request

    return build


def modified(**fields: object) -> Build:
    def build() -> pb.ModelInferRequest:
        request = pb.ModelInferRequest(model_name=NAME)
        request.inputs.add(name="input", datatype="FP64", shape=[1, 64])
        request.raw_input_contents.append(digits_batch(1).tobytes())
        for field, value in fields.items():
            if field == "outputs":
                request.outputs.add(name=str(value))
            elif field == "extra_raw":
                request.raw_input_contents.append(b"")
            else:
                setattr(request, field, value)
        return request

    return build


ROW = digits_batch(1).tobytes()
INVALID = grpc.StatusCode.INVALID_ARGUMENT

MALFORMED: dict[str, tuple[Build, grpc.StatusCode, str]] = {
    "wrong input name": (raw([1, 64], ROW, name="pixels"), INVALID, "unknown input 'pixels'"),
    "lossy datatype": (
        raw([1, 64], digits_batch(1, np.int64).tobytes(), "INT64"),
        INVALID,
        "input 'input' is INT64, which does not convert to FP64 without loss; "
        "this model takes 'input' (FP64, shape [-1, 64])",
    ),
    "wrong shape": (raw([1, 32], ROW[: 32 * 8]), INVALID, "has shape [1, 32]"),
    "raw buffer too short": (
        raw([2, 64], ROW),
        INVALID,
        "raw buffer has 512 bytes, but shape [2, 64] of FP64 needs 1024 bytes",
    ),
    "raw buffer too long": (raw([1, 64], ROW + b"x"), INVALID, "has 513 bytes"),
    "empty batch": (raw([0, 64], b""), INVALID, "the batch is empty"),
    "no inputs": (lambda: pb.ModelInferRequest(model_name=NAME), INVALID, "missing input 'input'"),
    "typed contents of the wrong size": (
        typed([2, 64], [0.0] * 64),
        INVALID,
        "fp64_contents has 64 elements, but shape [2, 64] needs 128",
    ),
    "unknown datatype": (raw([1, 64], ROW, "FP128"), INVALID, "unknown datatype 'FP128'"),
    "raw buffers that do not match the inputs": (
        modified(extra_raw=True),
        INVALID,
        "1 inputs but 2 raw_input_contents",
    ),
    "unknown requested output": (modified(outputs="probabilities"), INVALID, "unknown output"),
    "unknown model": (modified(model_name="nope"), grpc.StatusCode.NOT_FOUND, "unknown model"),
    "unknown version": (
        modified(model_version="9"),
        grpc.StatusCode.NOT_FOUND,
        "has no version '9'",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_request_then_a_good_one(digits_logistic_server: ModelServer, case: str) -> None:
    build, code, message = MALFORMED[case]
    with pytest.raises(grpc.RpcError) as caught:
        digits_logistic_server.stub.ModelInfer(build(), timeout=scaled(30))
    assert caught.value.code() == code
    assert message in caught.value.details()
    assert_still_serves(digits_logistic_server)


def assert_still_serves(server: ModelServer) -> None:
    out = server.infer({"input": digits_batch(4)})["output"]
    assert out.shape == (4, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


@pytest.fixture(scope="module")
def failing_server() -> Iterator[ModelServer]:
    """A model that raises on negative input, with a 64 KiB message limit."""
    uri = "clipper.testing.functions:fail_on_negative"
    args = ["--max-message-bytes", str(64 * 1024)]
    with ModelServer.start("python", uri, name="picky", args=args) as server:
        yield server


def test_an_exception_in_the_model_is_internal_with_its_message(
    failing_server: ModelServer,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        failing_server.infer({"x": -np.ones((2, 3))})
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "ValueError: negative pixel values are not images"
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(failing_server.infer({"x": x})["output"], x)
    assert "Traceback" in failing_server.logs()  # the operator sees where it raised


def test_a_message_over_the_limit_is_refused(failing_server: ModelServer) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        failing_server.infer({"x": np.zeros((100, 128))})  # 100 KiB
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    x = np.ones((10, 128))
    np.testing.assert_array_equal(failing_server.infer({"x": x})["output"], x)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--framework", "sklearn", "--uri", "/nonexistent/digits.joblib"], "No such file"),
        (
            ["--framework", "python", "--uri", "clipper.testing.functions:missing"],
            "has no attribute 'missing'",
        ),
    ],
)
def test_a_model_that_fails_to_load_exits_non_zero_with_one_clear_line(
    args: list[str], reason: str
) -> None:
    process = ClipperProcess(["model", "serve", "--name", "broken", "--port", "0", *args])
    try:
        assert process.wait(timeout=60) == 1
    finally:
        process.stop()
    errors = [line for line in process.log_path.read_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1, errors
    assert "failed to load model 'broken' version '1'" in errors[0]
    assert args[-1] in errors[0]
    assert reason in errors[0]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--framework", "noop", "--input-shape", "64"],
            "invalid --input-shape: Value error, the shape starts with the batch dimension",
        ),
        (
            ["--framework", "python", "--uri", "m:f", "--input-shape", "-1,64"],
            "python models need --input-datatype with --input-shape",
        ),
    ],
)
def test_invalid_flags_exit_2_naming_the_flag(flags: list[str], message: str) -> None:
    process = ClipperProcess(["model", "serve", "--name", "m", *flags])
    try:
        assert process.wait(timeout=60) == 2
    finally:
        process.stop()
    assert message in process.log_path.read_text()


def test_a_port_in_use_exits_non_zero_saying_so(digits_logistic_server: ModelServer) -> None:
    port = str(digits_logistic_server.port)
    args = ["model", "serve", "--framework", "noop", "--name", "m", "--port", port]
    process = ClipperProcess(args)
    try:
        assert process.wait(timeout=60) == 1
    finally:
        process.stop()
    errors = [line for line in process.log_path.read_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1, errors
    assert "cannot serve model 'm'" in errors[0]
    assert port in errors[0]
