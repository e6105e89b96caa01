"""The standard OIP clients, tritonclient HTTP and gRPC, against the frontend.

tritonclient is synchronous, so its calls run in a thread while the frontend
serves on the test's event loop. Over HTTP it sends tensors in Triton's binary
extension by default, and asks for binary outputs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import joblib
import pytest

from clipper.testing.frontend import route, same_predictions, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import DigitsModels, digits_batch


def talk(module_name: str, url: str, expected_input: tuple[str, str, list[int]]) -> object:
    """What a tritonclient user does: check health, read metadata, infer."""
    import importlib

    triton = importlib.import_module(module_name)
    client = triton.InferenceServerClient(url=url)
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("digits")
        metadata = client.get_model_metadata("digits")
        if isinstance(metadata, dict):  # the HTTP client answers JSON
            (tensor,) = metadata["inputs"]
            spec = (tensor["name"], tensor["datatype"], list(tensor["shape"]))
        else:
            (tensor,) = metadata.inputs
            spec = (tensor.name, tensor.datatype, list(tensor.shape))
        assert spec == expected_input
        pixels = digits_batch(6, offset=500)
        infer_input = triton.InferInput("input", list(pixels.shape), "FP64")
        infer_input.set_data_from_numpy(pixels)
        result = client.infer(
            "digits",
            inputs=[infer_input],
            outputs=[triton.InferRequestedOutput("output")],
            request_id="triton-7",
        )
        return pixels, result.as_numpy("output")
    finally:
        client.close()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
async def test_tritonclient_checks_health_reads_metadata_and_infers(
    protocol: str,
    routes: Path,
    digits_logistic_server: ModelServer,
    digits_models: DigitsModels,
) -> None:
    address = digits_logistic_server.address
    write_routes(routes, route("digits", {"digits-logistic": [address]}, latency_slo_ms=5000))
    async with serving(routes) as fe:
        url = fe.url.removeprefix("http://") if protocol == "http" else fe.grpc_address
        pixels, output = await asyncio.to_thread(
            talk, f"tritonclient.{protocol}", url, ("input", "FP64", [-1, 64])
        )
    expected = joblib.load(digits_models.logistic_regression).predict_proba(pixels)
    same_predictions(output, expected)
