"""The standard Open Inference Protocol client, tritonclient, calls our server."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.testing.model_servers import ModelServer
from clipper.testing.models import DigitsModels, digits_batch


def test_tritonclient_reads_metadata_then_infers(
    digits_logistic_server: ModelServer, digits_models: DigitsModels
) -> None:
    import joblib
    import tritonclient.grpc as triton
    from tritonclient.utils import triton_to_np_dtype

    client = triton.InferenceServerClient(url=digits_logistic_server.address)
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("digits-logistic")
        assert client.get_server_metadata().name == "clipper-model"

        metadata = client.get_model_metadata("digits-logistic")
        (tensor,) = metadata.inputs
        assert (tensor.name, tensor.datatype, list(tensor.shape)) == ("input", "FP64", [-1, 64])
        (output,) = metadata.outputs

        x = digits_batch(12, triton_to_np_dtype(tensor.datatype))
        infer_input = triton.InferInput(tensor.name, list(x.shape), tensor.datatype)
        infer_input.set_data_from_numpy(x)
        result = client.infer(
            "digits-logistic",
            inputs=[infer_input],
            outputs=[triton.InferRequestedOutput(output.name)],
            request_id="triton-1",
        )
        expected = joblib.load(digits_models.logistic_regression).predict_proba(x)
        np.testing.assert_array_equal(result.as_numpy(output.name), expected)
        assert result.get_response().id == "triton-1"
    finally:
        client.close()


@pytest.mark.parametrize(("datatype", "dtype"), [("FP32", np.float32), ("INT32", np.int32)])
def test_tritonclient_sends_a_lossless_datatype_and_the_fp64_model_answers(
    digits_logistic_server: ModelServer, digits_models: DigitsModels, datatype: str, dtype: type
) -> None:
    import joblib
    import tritonclient.grpc as triton

    x = digits_batch(5, dtype, offset=200)  # pixels are 0..16: exact in either datatype
    client = triton.InferenceServerClient(url=digits_logistic_server.address)
    try:
        narrow = triton.InferInput("input", list(x.shape), datatype)
        narrow.set_data_from_numpy(x)
        result = client.infer("digits-logistic", inputs=[narrow])
    finally:
        client.close()
    expected = joblib.load(digits_models.logistic_regression).predict_proba(x.astype(np.float64))
    np.testing.assert_array_equal(result.as_numpy("output"), expected)


def test_tritonclient_sees_our_errors_as_grpc_statuses(digits_logistic_server: ModelServer) -> None:
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=digits_logistic_server.address)
    try:
        bad = triton.InferInput("input", [1, 64], "INT64")  # beyond 2**53 FP64 rounds
        bad.set_data_from_numpy(digits_batch(1, np.int64))
        with pytest.raises(InferenceServerException) as caught:
            client.infer("digits-logistic", inputs=[bad])
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert "'input' is INT64, which does not convert to FP64 without loss" in (
            caught.value.message()
        )
        assert "this model takes 'input' (FP64" in caught.value.message()
        assert client.is_server_ready()  # and it goes on serving
    finally:
        client.close()


def test_fp64_into_an_fp32_model_is_refused_naming_both(digits_models: DigitsModels) -> None:
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    args = ["--method", "predict_proba", "--threads", "1", "--input-datatype", "FP32"]
    uri = digits_models.logistic_regression
    with ModelServer.start("sklearn", uri, name="fp32", args=args, metrics=False) as server:
        client = triton.InferenceServerClient(url=server.address)
        try:
            wide = triton.InferInput("input", [1, 64], "FP64")
            wide.set_data_from_numpy(digits_batch(1))
            with pytest.raises(InferenceServerException) as caught:
                client.infer("fp32", inputs=[wide])
        finally:
            client.close()
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert caught.value.message() == (
        "input 'input' is FP64, which does not convert to FP32 without loss; "
        "this model takes 'input' (FP32, shape [-1, 64])"
    )
