"""Every adapter, loaded in process the way a container loads it, predicts like its framework."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from clipper.common.errors import ConfigError, ModelLoadError
from clipper.model_wrappers import ModelSettings, load_model
from clipper.model_wrappers.signature import TensorSpec
from clipper.testing.models import DigitsModels, digits_batch


def settings(framework: str, uri: object = "", **fields: object) -> ModelSettings:
    return ModelSettings(framework=framework, name="m", uri=str(uri), threads=1, **fields)


async def test_sklearn_predict_proba_matches_the_estimator(digits_models: DigitsModels) -> None:
    import joblib

    path = digits_models.logistic_regression
    model = await load_model(settings("sklearn", path, method="predict_proba"))
    x = digits_batch(17)
    out = await model.predict({"input": x})
    np.testing.assert_array_equal(out["output"], joblib.load(path).predict_proba(x))
    assert model.signature.inputs == (TensorSpec("input", "FP64", (-1, 64)),)
    assert model.signature.outputs == (TensorSpec("output", "FP64", (-1, 10)),)
    assert model.properties["estimator"] == "LogisticRegression"
    await model.close()


async def test_sklearn_predict_returns_labels(digits_models: DigitsModels) -> None:
    import joblib

    path = digits_models.random_forest
    model = await load_model(settings("sklearn", path, input_datatype="FP32"))
    x = digits_batch(9, np.float32)
    out = await model.predict({"input": x})
    np.testing.assert_array_equal(out["output"], joblib.load(path).predict(x))
    assert model.signature.inputs[0].datatype == "FP32"
    assert model.signature.outputs == (TensorSpec("output", "INT64", (-1,)),)
    await model.close()


async def test_sklearn_refuses_a_method_the_estimator_lacks(tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LinearRegression

    path = tmp_path / "regressor.joblib"
    joblib.dump(LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0]), path)
    with pytest.raises(ModelLoadError, match=r"LinearRegression has no predict_proba\(\)"):
        await load_model(settings("sklearn", path, method="predict_proba"))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
async def test_torchscript_matches_torch(digits_models: DigitsModels) -> None:
    import torch

    path = digits_models.torch_mlp.torchscript
    model = await load_model(settings("pytorch", path, input_shape="-1,64", device="cpu"))
    x = digits_batch(33, np.float32)
    out = await model.predict({"input": x})
    with torch.inference_mode():
        expected = torch.jit.load(str(path))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out["output"], expected, rtol=1e-6)
    assert model.signature.outputs == (TensorSpec("output", "FP32", (-1, 10)),)
    assert model.properties["device"] == "cpu"
    await model.close()


async def test_state_dict_with_a_factory_matches_torchscript(digits_models: DigitsModels) -> None:
    mlp = digits_models.torch_mlp
    from_state = await load_model(
        settings("pytorch", mlp.state_dict, factory=mlp.factory, input_shape="-1,64")
    )
    scripted = await load_model(settings("pytorch", mlp.torchscript, input_shape="-1,64"))
    x = {"input": digits_batch(5, np.float32)}
    a, b = (await from_state.predict(x))["output"], (await scripted.predict(x))["output"]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert from_state.properties["factory"] == mlp.factory


async def test_a_state_dict_without_factory_says_what_is_missing(
    digits_models: DigitsModels,
) -> None:
    uri = digits_models.torch_mlp.state_dict
    with pytest.raises(ModelLoadError, match=r"not a TorchScript file .* --factory"):
        await load_model(settings("pytorch", uri))


def no_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so the no-GPU path cannot be seen")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
async def test_pytorch_on_cuda_without_a_gpu_fails_to_load(digits_models: DigitsModels) -> None:
    no_cuda()
    uri = digits_models.torch_mlp.torchscript
    with pytest.raises(ModelLoadError) as caught:
        await load_model(settings("pytorch", uri, device="cuda", input_shape="-1,64"))
    assert "device cuda was asked for but no GPU is usable" in caught.value.message
    assert "torch.cuda.is_available() is False" in caught.value.message


async def test_onnx_on_cuda_without_a_gpu_fails_to_load(digits_models: DigitsModels) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA, so the no-GPU path cannot be seen")
    with pytest.raises(ModelLoadError, match=r"no GPU is usable .*onnxruntime providers"):
        await load_model(settings("onnx", digits_models.onnx, device="cuda"))


async def test_python_on_cuda_without_a_gpu_fails_to_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, whatever the machine has
    with pytest.raises(ModelLoadError, match="no GPU is usable"):
        await load_model(settings("python", f"{FUNCTIONS}:device_labels", device="cuda"))


async def test_pytorch_falls_back_to_cpu_only_when_allowed(
    digits_models: DigitsModels, caplog: pytest.LogCaptureFixture
) -> None:
    no_cuda()
    uri = digits_models.torch_mlp.torchscript
    wanted = settings("pytorch", uri, device="cuda", input_shape="-1,64", cpu_fallback=True)
    with caplog.at_level(logging.INFO):
        model = await load_model(wanted)
    assert model.properties["device"] == "cpu"
    messages = [r.getMessage() for r in caplog.records]
    assert any("CUDA was asked for but is not available" in m for m in messages)
    assert any("pytorch model runs on cpu" in m for m in messages)
    out = await model.predict({"input": digits_batch(2, np.float32)})
    assert out["output"].shape == (2, 10)


@pytest.mark.parametrize(
    ("device", "gpus", "fallback", "expected"),
    [("auto", "", False, "cpu"), ("cpu", "0", False, "cpu"), ("cuda", "", True, "cpu")],
)
async def test_python_functions_learn_their_device(
    monkeypatch: pytest.MonkeyPatch, device: str, gpus: str, fallback: bool, expected: str
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", gpus)
    monkeypatch.setenv("CLIPPER_DEVICE", "unset")  # so the adapter's value is undone after
    fields = {"device": device, "cpu_fallback": fallback}
    model = await load_model(settings("python", f"{FUNCTIONS}:device_labels", **fields))
    assert model.properties["device"] == expected
    out = await model.predict({"x": np.zeros((2, 1))})
    assert out["output"].tolist() == [expected, expected]


async def test_onnx_matches_torch_and_declares_its_signature(digits_models: DigitsModels) -> None:
    onnx = await load_model(settings("onnx", digits_models.onnx, device="auto"))
    torch_model = await load_model(
        settings("pytorch", digits_models.torch_mlp.torchscript, input_shape="-1,64")
    )
    x = {"input": digits_batch(64, np.float32)}
    a, b = (await onnx.predict(x))["output"], (await torch_model.predict(x))["output"]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert onnx.signature.inputs == (TensorSpec("input", "FP32", (-1, 64)),)
    assert onnx.signature.outputs == (TensorSpec("output", "FP32", (-1, 10)),)
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert onnx.properties["device"] == "cpu"


FUNCTIONS = "clipper.testing.functions"


async def test_python_function_gets_the_array_of_a_single_input() -> None:
    model = await load_model(settings("python", f"{FUNCTIONS}:row_labels"))
    out = await model.predict({"x": np.array([[1.0, 2.0], [3.0, 4.5]])})
    assert out["output"].tolist() == ["sum=3", "sum=7.5"]


async def test_python_function_gets_a_dict_of_several_inputs() -> None:
    model = await load_model(settings("python", f"{FUNCTIONS}:add"))
    out = await model.predict({"a": np.arange(3), "b": np.arange(3) * 10})
    assert out["output"].tolist() == [0, 11, 22]


async def test_async_python_functions_are_awaited() -> None:
    model = await load_model(settings("python", f"{FUNCTIONS}:async_identity"))
    x = np.arange(6).reshape(3, 2)
    np.testing.assert_array_equal((await model.predict({"x": x}))["output"], x)


async def test_python_function_from_a_cloudpickle_file(tmp_path: Path) -> None:
    import cloudpickle

    offset = 100
    path = tmp_path / "fn.pkl"
    path.write_bytes(cloudpickle.dumps(lambda x: {"shifted": x + offset}))
    model = await load_model(settings("python", path))
    assert (await model.predict({"x": np.array([1, 2])}))["shifted"].tolist() == [101, 102]


async def test_a_declared_signature_is_kept_for_python_models() -> None:
    model = await load_model(
        settings("python", f"{FUNCTIONS}:identity", input_shape="-1,4", input_datatype="INT32")
    )
    assert model.signature.inputs == (TensorSpec("input", "INT32", (-1, 4)),)
    assert model.signature.outputs == ()  # user functions are never called to learn them


async def test_noop_echoes_its_input() -> None:
    model = await load_model(settings("noop"))
    x = np.ones((2, 3), np.float32)
    assert (await model.predict({"x": x}))["output"] is x


@pytest.mark.parametrize(
    ("framework", "uri", "message"),
    [
        ("sklearn", "/nonexistent/model.joblib", "No such file or directory"),
        ("python", "clipper.testing.no_such_module:f", "No module named 'clipper.testing.no_such"),
        ("python", f"{FUNCTIONS}:no_such_function", "has no attribute 'no_such_function'"),
        ("python", f"{FUNCTIONS}:os", "is a module, not a function"),
        ("python", "", "python models need --uri"),
        ("onnx", "/nonexistent/model.onnx", "/nonexistent/model.onnx"),
    ],
)
async def test_load_failures_are_one_readable_error(framework: str, uri: str, message: str) -> None:
    with pytest.raises(ModelLoadError) as caught:
        await load_model(settings(framework, uri))
    assert message in caught.value.message


async def test_python_models_need_a_datatype_with_a_shape() -> None:
    with pytest.raises(ConfigError, match="need --input-datatype with --input-shape"):
        await load_model(settings("python", f"{FUNCTIONS}:identity", input_shape="-1,4"))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
async def test_worker_threads_keep_the_cpu_thread_limit(digits_models: DigitsModels) -> None:
    """OpenMP limits are per thread: the predict threads get their own, or they spin."""
    from threadpoolctl import threadpool_info

    def openmp_threads() -> list[int]:  # torch's own OpenMP runtime, as this thread sees it
        # By the library's folder (site-packages/torch/lib), not "torch" anywhere in the
        # path: where Python itself lives under a folder named torch, scikit-learn's own
        # libgomp would match too (seen on the GPU machine, /opt/torch/.venv).
        pools = threadpool_info()
        return [
            p["num_threads"]
            for p in pools
            if p["user_api"] == "openmp" and Path(p["filepath"]).parent.match("torch/lib")
        ]

    uri = digits_models.torch_mlp.torchscript
    model = await load_model(settings("pytorch", uri, input_shape="-1,64"))  # threads=1
    in_worker = await model.run_blocking(openmp_threads)
    assert in_worker, "torch brings an OpenMP runtime"
    assert set(in_worker) == {1}
    await model.close()
