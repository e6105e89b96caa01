"""Client data against an app's input signature: safe conversions, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import InvalidInput
from clipper.common.routing import TensorSpec
from clipper.frontend.signature import Signature, check_tensor, rows_from_json, tensor_from_json

PIXELS = Signature.from_spec(TensorSpec(name="input", datatype="FP64", shape=(4,)))
LABELS = Signature("ids", "INT64", (-1,))


def test_one_json_row_becomes_a_batch_of_one() -> None:
    rows = rows_from_json([1, 2, 3, 4], batch=False, signature=PIXELS, what="input")
    assert rows.shape == (1, 4)
    assert rows.dtype == np.float64


def test_a_json_batch_keeps_its_rows() -> None:
    rows = rows_from_json([[1.5, 2, 3, 4]] * 3, batch=True, signature=PIXELS, what="x")
    assert rows.shape == (3, 4)


def test_variable_dimensions_match_any_size() -> None:
    rows = rows_from_json([[1, 2], [3, 4]], batch=True, signature=LABELS, what="x")
    assert rows.dtype == np.int64
    assert rows.shape == (2, 2)


@pytest.mark.parametrize(
    ("value", "batch", "signature", "message"),
    [
        ([1, 2, 3], False, PIXELS, r"shape \[3\]; expected one row \(FP64 rows of shape \[4\]\)"),
        ([[1, 2, 3]], True, PIXELS, r"shape \[1, 3\]; expected \[batch, 4\]"),
        (["a", "b", "c", "d"], False, PIXELS, "holds text values; expected FP64"),
        ([[1.5, 2.0]], True, LABELS, "holds float values; expected INT64"),
        ([[1, 2], [3]], True, LABELS, "not a regular array"),
        ([], True, LABELS, "no rows"),
        (5, True, LABELS, "list of rows"),
    ],
)
def test_mismatches_name_what_was_expected(
    value: object, batch: bool, signature: Signature, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        rows_from_json(value, batch, signature, "input")


def test_without_a_signature_json_is_taken_as_it_comes() -> None:
    rows = rows_from_json([[1, 2], [3, 4]], batch=True, signature=None, what="x")
    assert rows.dtype == np.int64
    with pytest.raises(InvalidInput, match="numbers or strings"):
        rows_from_json([None], batch=False, signature=None, what="x")


def test_oip_json_tensors_may_be_flat_or_nested() -> None:
    flat = tensor_from_json([1, 2, 3, 4, 5, 6, 7, 8], "FP64", [2, 4], PIXELS, "input")
    nested = tensor_from_json([[1, 2, 3, 4], [5, 6, 7, 8]], "FP64", [2, 4], PIXELS, "input")
    np.testing.assert_array_equal(flat, nested)


def test_oip_datatype_must_widen_and_size_must_match() -> None:
    with pytest.raises(InvalidInput, match="datatype INT64; the app expects FP64"):
        tensor_from_json([1, 2, 3, 4], "INT64", [1, 4], PIXELS, "input")
    with pytest.raises(InvalidInput, match="datatype FP64; the app expects FP32"):
        tensor_from_json([1, 2, 3, 4], "FP64", [1, 4], Signature("input", "FP32", (4,)), "input")
    with pytest.raises(InvalidInput, match="has 3 elements, but its shape \\[1, 4\\] needs 4"):
        tensor_from_json([1, 2, 3], "FP64", [1, 4], PIXELS, "input")


@pytest.mark.parametrize("datatype", ["FP32", "INT32", "UINT8", "FP16"])
def test_oip_json_tensors_of_a_lossless_datatype_are_widened(datatype: str) -> None:
    tensor = tensor_from_json([1, 2, 3, 4], datatype, [1, 4], PIXELS, "input")
    rows = check_tensor(tensor, PIXELS, "input")
    assert rows.dtype == np.float64
    np.testing.assert_array_equal(rows, [[1.0, 2.0, 3.0, 4.0]])


def test_decoded_tensors_are_checked_too() -> None:
    good = np.zeros((2, 4))
    assert check_tensor(good, PIXELS, "input") is good
    with pytest.raises(InvalidInput, match="datatype INT64; the app expects FP64"):
        check_tensor(good.astype(np.int64), PIXELS, "input")
    with pytest.raises(InvalidInput, match="needs a batch dimension"):
        check_tensor(np.float64(1.0).reshape(()), None, "input")


def test_decoded_tensors_of_a_lossless_datatype_are_widened_once() -> None:
    narrow = np.arange(8, dtype=np.float32).reshape(2, 4)
    rows = check_tensor(narrow, PIXELS, "input")
    assert rows.dtype == np.float64
    np.testing.assert_array_equal(rows, narrow)
    fp32 = Signature("input", "FP32", (4,))
    with pytest.raises(InvalidInput, match="datatype FP64; the app expects FP32"):
        check_tensor(narrow.astype(np.float64), fp32, "input")


def test_from_container_metadata_drops_the_batch_dimension() -> None:
    signature = Signature.from_metadata("input", "FP32", [-1, 8, 8])
    assert signature.row_shape == (8, 8)
    assert signature.describe() == "FP32 rows of shape [8, 8]"
