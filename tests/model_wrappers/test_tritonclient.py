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


def test_tritonclient_sees_our_errors_as_grpc_statuses(digits_logistic_server: ModelServer) -> None:
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=digits_logistic_server.address)
    try:
        bad = triton.InferInput("input", [1, 64], "FP32")
        bad.set_data_from_numpy(digits_batch(1, np.float32))
        with pytest.raises(InferenceServerException) as caught:
            client.infer("digits-logistic", inputs=[bad])
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert "this model takes 'input' (FP64" in caught.value.message()
    finally:
        client.close()
