"""A request is held to the model's signature before the model sees it."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import InvalidInput, ModelError
from clipper.model_wrappers.signature import Signature, TensorSpec, batch_size

DIGITS = Signature(inputs=(TensorSpec("input", "FP64", (-1, 64)),))


def test_a_matching_batch_passes_as_it_is_and_reports_its_rows() -> None:
    pixels = np.zeros((3, 64))
    inputs, rows = DIGITS.conform({"input": pixels})
    assert rows == 3
    assert inputs["input"] is pixels


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.uint8, np.int16])
def test_lossless_datatypes_are_widened_to_the_declared_one(dtype: type) -> None:
    pixels = np.arange(2 * 64).reshape(2, 64).astype(dtype)
    inputs, rows = DIGITS.conform({"input": pixels})
    assert rows == 2
    assert inputs["input"].dtype == np.float64
    np.testing.assert_array_equal(inputs["input"], pixels.astype(np.float64))


@pytest.mark.parametrize(("dtype", "datatype"), [(np.int64, "INT64"), (np.bool_, "BOOL")])
def test_lossy_datatypes_are_refused_naming_both(dtype: type, datatype: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        DIGITS.conform({"input": np.zeros((1, 64), dtype)})
    assert f"input 'input' is {datatype}, which does not convert to FP64 without loss" in (
        caught.value.message
    )


def test_fp64_into_an_fp32_model_is_refused_naming_both() -> None:
    fp32 = Signature(inputs=(TensorSpec("input", "FP32", (-1, 4)),))
    with pytest.raises(InvalidInput) as caught:
        fp32.conform({"input": np.zeros((1, 4))})
    assert caught.value.message == (
        "input 'input' is FP64, which does not convert to FP32 without loss; "
        "this model takes 'input' (FP32, shape [-1, 4])"
    )


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"pixels": np.zeros((1, 64))}, "unknown input 'pixels'; missing input 'input'"),
        ({"input": np.zeros((1, 64)), "extra": np.zeros((1, 1))}, "unknown input 'extra'"),
        ({"input": np.zeros((1, 64), np.int64)}, "input 'input' is INT64"),
        ({"input": np.zeros((1, 63))}, "has shape [1, 63]"),
        ({"input": np.zeros((1, 8, 8))}, "has shape [1, 8, 8]"),
        ({"input": np.zeros((0, 64))}, "the batch is empty"),
        ({"input": np.float64(1.0).reshape(())}, "has shape []"),
    ],
)
def test_a_mismatch_names_what_the_model_takes(inputs: dict, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        DIGITS.conform(inputs)
    assert message in caught.value.message
    if "empty" not in message:
        assert "'input' (FP64, shape [-1, 64])" in caught.value.message


def test_wildcard_dimensions_accept_any_size() -> None:
    spec = TensorSpec("image", "UINT8", (-1, -1, -1, 3))
    image = np.zeros((2, 5, 7, 3), np.uint8)
    assert Signature(inputs=(spec,)).conform({"image": image}) == ({"image": image}, 2)


def test_an_open_signature_accepts_any_inputs_but_still_needs_a_batch() -> None:
    open_signature = Signature()
    assert open_signature.conform({"a": np.zeros((4, 2)), "b": np.zeros(4, np.int32)})[1] == 4
    with pytest.raises(InvalidInput, match="no inputs"):
        open_signature.conform({})
    with pytest.raises(InvalidInput, match="'b' has 3 rows but the others have 4"):
        open_signature.conform({"a": np.zeros((4, 2)), "b": np.zeros(3)})
    with pytest.raises(InvalidInput, match="'a' is a scalar"):
        open_signature.conform({"a": np.zeros(())})


def test_outputs_need_one_row_per_input_row() -> None:
    DIGITS.check_outputs({"output": np.zeros((5, 10))}, rows=5)
    with pytest.raises(ModelError, match="returned 4 rows in output 'output' for a batch of 5"):
        DIGITS.check_outputs({"output": np.zeros((4, 10))}, rows=5)
    with pytest.raises(ModelError, match="returned a scalar"):
        DIGITS.check_outputs({"output": np.zeros(())}, rows=5)
    with pytest.raises(ModelError, match="no outputs"):
        DIGITS.check_outputs({}, rows=5)


def test_outputs_must_have_a_protocol_datatype() -> None:
    with pytest.raises(ModelError, match="output 'output'"):
        DIGITS.check_outputs({"output": np.zeros(2, np.complex64)}, rows=2)


def test_an_output_spec_keeps_the_shape_but_any_batch() -> None:
    spec = TensorSpec.of("output", np.zeros((1, 10), np.float32))
    assert spec == TensorSpec("output", "FP32", (-1, 10))


def test_batch_size_of_bytes_tensors() -> None:
    assert batch_size({"text": np.array([b"a", b"b"], dtype=object)}) == 2
