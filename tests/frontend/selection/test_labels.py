"""Labels checked against the models' declared outputs (OIP metadata)."""

from __future__ import annotations

import pytest

from clipper.common.errors import InvalidInput
from clipper.frontend.selection.labels import OutputSpec, check_label


def spec(datatype: str, *shape: int) -> OutputSpec:
    found = OutputSpec.of_metadata(datatype, [-1, *shape])
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("output", "loss", "label"),
    [
        (spec("INT64"), "zero_one", 7),
        (spec("INT64"), "zero_one", 7.0),
        (spec("INT64", 3), "zero_one", [1, 0, 2]),  # per-position labels
        (spec("FP64", 10), "zero_one", 9),
        (spec("FP64", 3), "zero_one", [0.0, 1.0, 0.0]),  # one-hot
        (spec("FP64", -1), "zero_one", 12),  # width unknown: the prediction decides
        (spec("FP32"), "zero_one", 2.5),
        (spec("FP32"), "squared", -2.5),
        (spec("INT32"), "absolute", -3),
        (spec("BOOL"), "zero_one", False),
        (spec("BYTES"), "zero_one", "cat"),
    ],
)
def test_labels_that_fit_the_outputs(output: OutputSpec, loss: str, label: object) -> None:
    check_label(label, output, loss)


@pytest.mark.parametrize(
    ("output", "loss", "label", "message"),
    [
        (spec("INT64"), "zero_one", True, "INT64 class labels, so a label must be a non-neg"),
        (spec("INT64"), "zero_one", 0.5, "non-negative integer"),
        (spec("INT64"), "zero_one", -1, "non-negative integer"),
        (spec("INT64"), "zero_one", 1e308, r"at most 9223372036854775807"),
        (spec("INT8"), "zero_one", 128, r"at most 127"),
        (spec("FP64", 10), "zero_one", 10, r"an integer in \[0, 10\)"),
        (spec("FP64", 10), "zero_one", True, r"an integer in \[0, 10\)"),
        (spec("FP64"), "zero_one", float("inf"), "FP64 numbers, so a label must be a number"),
        (spec("FP64"), "absolute", True, "needs a numeric label, finite and not a boolean"),
        (spec("FP64"), "squared", "high", "needs a numeric label"),
        (spec("BOOL"), "zero_one", 1, "true or false"),
        (spec("BYTES"), "zero_one", 3, "must be a string"),
        (spec("INT64"), "zero_one", None, "needs a label"),
    ],
)
def test_labels_that_do_not_fit_say_what_is_expected(
    output: OutputSpec, loss: str, label: object, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_label(label, output, loss)


def test_unknown_datatypes_are_not_checked() -> None:
    assert OutputSpec.of_metadata("", [-1]) is None
    assert OutputSpec.of_metadata("COMPLEX64", [-1]) is None
