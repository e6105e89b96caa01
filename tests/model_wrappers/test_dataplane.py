"""The transport-independent request path: readiness, names, validation, model failures."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import InvalidInput, ModelError, NotFound, Unavailable
from clipper.model_wrappers import ModelSettings, create_model
from clipper.model_wrappers.dataplane import DataPlane
from clipper.model_wrappers.metrics import ModelMetrics

FUNCTIONS = "clipper.testing.functions"


async def plane(function: str, **fields: object) -> DataPlane:
    settings = ModelSettings(framework="python", name="f", uri=f"{FUNCTIONS}:{function}", **fields)
    data_plane = DataPlane(create_model(settings), ModelMetrics())
    await data_plane.load()
    return data_plane


async def test_a_model_that_is_still_loading_is_unavailable() -> None:
    settings = ModelSettings(framework="python", name="f", uri=f"{FUNCTIONS}:identity")
    data_plane = DataPlane(create_model(settings), ModelMetrics())
    assert not data_plane.ready
    with pytest.raises(Unavailable, match="still loading"):
        await data_plane.infer({"x": np.ones((1, 1))})
    await data_plane.load()
    assert data_plane.ready
    data_plane.drain()  # draining: not ready, but still answers
    assert not data_plane.ready
    assert (await data_plane.infer({"x": np.ones((1, 1))}))["output"].shape == (1, 1)


async def test_a_model_exception_becomes_a_model_error_with_its_message() -> None:
    data_plane = await plane("fail_on_negative")
    with pytest.raises(ModelError) as caught:
        await data_plane.infer({"x": -np.ones((2, 2))})
    assert caught.value.message == "ValueError: negative pixel values are not images"
    assert (await data_plane.infer({"x": np.ones((2, 2))}))["output"].shape == (2, 2)


async def test_a_model_that_loses_rows_is_a_model_error() -> None:
    data_plane = await plane("drop_last_row")
    with pytest.raises(ModelError, match="returned 2 rows in output 'output' for a batch of 3"):
        await data_plane.infer({"x": np.ones((3, 2))})


async def test_requested_outputs_select_and_unknown_ones_are_the_clients_error() -> None:
    data_plane = await plane("identity", output_name="y")
    x = np.arange(4.0).reshape(2, 2)
    assert list(await data_plane.infer({"x": x}, ["y"])) == ["y"]
    with pytest.raises(InvalidInput, match="unknown output 'z'; this model returned 'y'"):
        await data_plane.infer({"x": x}, ["z"])


async def test_a_declared_signature_is_enforced() -> None:
    data_plane = await plane("identity", input_shape="-1,2", input_datatype="FP64")
    with pytest.raises(InvalidInput, match="has shape \\[1, 3\\]"):
        await data_plane.infer({"input": np.ones((1, 3))})


def test_model_names_and_versions() -> None:
    settings = ModelSettings(framework="noop", name="digits", version="4")
    data_plane = DataPlane(create_model(settings), ModelMetrics())
    data_plane.check_model("digits")
    data_plane.check_model("digits", "4")
    with pytest.raises(NotFound, match="unknown model 'mnist'; this server serves 'digits'"):
        data_plane.check_model("mnist")
    with pytest.raises(NotFound, match="has no version '3'; this server serves version '4'"):
        data_plane.check_model("digits", "3")
