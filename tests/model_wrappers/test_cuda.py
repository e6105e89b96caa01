"""The CUDA paths on a real GPU: served on the device, equal to the module there.

These run only where torch sees a CUDA device (the GPU machine a session is lent;
CI has none, and says so in the skip reason). The no-GPU paths -- CUDA asked for
and refused, the CPU fallback -- are tested in test_serving.py and test_adapters.py
on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from clipper.common.protocol import pb
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import DigitsModels, digits_batch
from clipper.testing.waiting import ProcessExited

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning"),
]


def on_cuda(models: DigitsModels, x: np.ndarray) -> np.ndarray:
    """What the TorchScript MLP computes for ``x`` on the GPU, in process."""
    module = torch.jit.load(str(models.torch_mlp.torchscript), map_location="cuda")
    with torch.inference_mode():
        return module(torch.from_numpy(x).cuda()).cpu().numpy()


def device_of(server: ModelServer) -> str:
    metadata = server.stub.ModelMetadata(pb.ModelMetadataRequest(name=server.name))
    return metadata.properties["device"]


@pytest.fixture(scope="module")
def cuda_server(digits_models: DigitsModels) -> Iterator[ModelServer]:
    """The TorchScript MLP with ``--device cuda`` and no fallback: it runs on the GPU
    or does not start."""
    uri = digits_models.torch_mlp.torchscript
    args = ["--input-shape", "-1,64", "--device", "cuda", "--threads", "1"]
    with ModelServer.start("pytorch", uri, name="digits-mlp-cuda", args=args) as server:
        yield server


def test_cuda_is_what_the_server_reports(cuda_server: ModelServer) -> None:
    assert device_of(cuda_server) == "cuda"


@pytest.mark.parametrize("rows", [1, 64, 1000])
def test_served_on_cuda_equals_the_module_on_cuda(
    cuda_server: ModelServer, digits_models: DigitsModels, rows: int
) -> None:
    x = digits_batch(rows, np.float32, offset=rows)
    served = cuda_server.infer({"input": x})["output"]
    assert served.shape == (rows, 10)
    assert served.dtype == np.float32
    np.testing.assert_allclose(served, on_cuda(digits_models, x), rtol=1e-5, atol=1e-6)


def test_served_on_cuda_agrees_with_cpu_on_every_label(
    cuda_server: ModelServer, digits_models: DigitsModels
) -> None:
    """Across devices the floats differ in the last bits; the predicted digit must not."""
    x = digits_batch(500, np.float32)
    served = cuda_server.infer({"input": x})["output"]
    with torch.inference_mode():
        cpu = torch.jit.load(str(digits_models.torch_mlp.torchscript))(torch.from_numpy(x))
    np.testing.assert_array_equal(served.argmax(axis=1), cpu.numpy().argmax(axis=1))
    np.testing.assert_allclose(served, cpu.numpy(), rtol=1e-3, atol=1e-4)


def test_concurrent_batches_on_cuda_each_get_their_own_rows(
    cuda_server: ModelServer, digits_models: DigitsModels
) -> None:
    """Requests of different sizes in flight at once: each answer is its own batch's."""
    sizes = [1, 3, 17, 64, 128, 255] * 4
    batches = [digits_batch(n, np.float32, offset=i) for i, n in enumerate(sizes)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda x: cuda_server.infer({"input": x})["output"], batches))
    for x, served in zip(batches, answers, strict=True):
        np.testing.assert_allclose(served, on_cuda(digits_models, x), rtol=1e-5, atol=1e-6)


def test_device_auto_takes_the_gpu(digits_models: DigitsModels) -> None:
    uri = digits_models.torch_mlp.torchscript
    args = ["--input-shape", "-1,64", "--device", "auto", "--threads", "1"]
    with ModelServer.start("pytorch", uri, name="digits-mlp-auto", args=args) as server:
        assert device_of(server) == "cuda"
        x = digits_batch(8, np.float32)
        np.testing.assert_allclose(
            server.infer({"input": x})["output"], on_cuda(digits_models, x), rtol=1e-5, atol=1e-6
        )


def test_onnx_on_cuda_serves_there_or_says_which_build_is_missing(
    digits_models: DigitsModels,
) -> None:
    """onnxruntime's CUDA provider comes only with the onnxruntime-gpu build: with it
    the model serves on the GPU; without it, ``--device cuda`` refuses to start and
    says why, even on a machine that has a GPU."""
    import onnxruntime

    args = ["--device", "cuda", "--threads", "1"]
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        with ModelServer.start("onnx", digits_models.onnx, name="onnx-cuda", args=args) as server:
            assert device_of(server) == "cuda"
            x = digits_batch(16, np.float32)
            np.testing.assert_allclose(
                server.infer({"input": x})["output"], on_cuda(digits_models, x), rtol=1e-4
            )
        return
    with pytest.raises(ProcessExited) as caught:
        ModelServer.start("onnx", digits_models.onnx, name="onnx-cuda", args=args, timeout=60)
    assert "device cuda was asked for but no GPU is usable" in str(caught.value)
    assert "onnxruntime providers" in str(caught.value)
