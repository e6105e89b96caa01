"""Answers as OIP tensors: defaults cast to fit, or the reason's status."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import DeadlineExceeded, Unavailable
from clipper.common.protocol import pb
from clipper.frontend.oip import declared_row, response_parameters, stack_outputs
from clipper.frontend.queries import Answer


def real(values: list[float], models: tuple[str, ...] = ("m",)) -> Answer:
    return Answer(np.array(values), models=models, query_id=7)


def default(value: object, reason: str = "slo") -> Answer:
    return Answer(value, default=True, reason=reason, explanation=f"{reason}: late", query_id=8)


def test_rows_stack_into_one_tensor() -> None:
    out = stack_outputs([real([1, 2]), real([3, 4])])
    np.testing.assert_array_equal(out, [[1, 2], [3, 4]])


def test_a_default_is_cast_to_the_output_dtype_and_row_shape() -> None:
    out = stack_outputs([real([1.5, 2.5]), default(-1)])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[1.5, 2.5], [-1, -1]])


def test_all_defaults_take_their_shape_from_the_default() -> None:
    np.testing.assert_array_equal(stack_outputs([default(0), default(0)]), [0, 0])


def test_all_defaults_take_the_declared_output_when_there_is_one() -> None:
    spec = pb.ModelMetadataResponse.TensorMetadata(name="p", datatype="FP32", shape=[-1, 3])
    out = stack_outputs([default(-1), default(-1)], declared_row([spec]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[-1, -1, -1], [-1, -1, -1]])
    variable = pb.ModelMetadataResponse.TensorMetadata(name="p", datatype="FP32", shape=[-1, -1])
    assert declared_row([variable]) is None


@pytest.mark.parametrize(
    ("reason", "error"), [("slo", DeadlineExceeded), ("unavailable", Unavailable)]
)
def test_a_default_that_cannot_be_a_tensor_fails_with_its_reasons_status(
    reason: str, error: type[Exception]
) -> None:
    with pytest.raises(error, match="default output None does not fit"):
        stack_outputs([default(None, reason)])
    with pytest.raises(error, match="does not fit the output tensor"):
        stack_outputs([real([1.0, 2.0]), default("n/a", reason)])


def test_parameters_report_defaults_models_and_the_first_query_id() -> None:
    params = response_parameters([real([1.0], ("a", "b")), default(0), real([2.0], ("a",))])
    assert params == {
        "query_id": 7,
        "default": True,
        "default_rows": "1",
        "default_explanation": "slo: late",
        "models": "a,b",
    }
    assert "default" not in response_parameters([real([1.0])])
