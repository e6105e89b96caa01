"""Feedback losses: labels become losses in [0, 1]; a label that does not fit is a 400."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import InvalidInput
from clipper.frontend.selection.losses import absolute, get_loss, squared, zero_one


@pytest.mark.parametrize(
    ("prediction", "label", "loss"),
    [
        (np.array(3), 3, 0.0),
        (np.array([3]), 4, 1.0),
        (np.array(3, dtype=np.int32), np.int64(3), 0.0),
        (np.array(3.0), 3, 0.0),  # a float label output (some sklearn models)
        (np.array(True), False, 1.0),
        (np.array([0.1, 0.7, 0.2]), 1, 0.0),  # class scores: argmax
        (np.array([0.1, 0.7, 0.2]), 2, 1.0),
        (np.array([0.1, 0.7, 0.2], dtype=np.float32), 1.0, 0.0),  # 1.0 is a class index
        (np.array([0.1, 0.7, 0.2]), [0, 1, 0], 0.0),  # one-hot label
        (np.array(3, dtype=np.int64), 3.0, 0.0),  # an integral float is that class
        (np.array([b"cat"], dtype=object), "cat", 0.0),  # JSON text vs BYTES output
        (np.array(["dog"]), "cat", 1.0),
        (np.array([1, 2, 3, 4]), [1, 2, 0, 4], 0.25),  # per-position labels
        (np.array([[0.9, 0.1], [0.2, 0.8]]), [0, 0], 0.5),  # per-position scores
        (np.array([np.nan, 0.5]), 0, 1.0),  # a NaN model is wrong, not an error
    ],
)
def test_zero_one(prediction: np.ndarray, label: object, loss: float) -> None:
    assert zero_one(prediction, label) == loss


CLASSES = "so a label must be a class index, an integer in \\[0, 2\\)"
CLASS_LABEL = "output int64 class labels, so a label must be a non-negative integer"


@pytest.mark.parametrize(
    ("prediction", "label", "message"),
    [
        (np.array([0.2, 0.8]), None, "needs a label"),
        (np.array([0.2, 0.8]), 1.5, CLASSES),
        (np.array([0.2, 0.8]), "one", CLASSES),
        (np.array([0.2, 0.8]), 2, CLASSES),
        (np.array([0.2, 0.8]), -1, CLASSES),
        (np.array([0.2, 0.8]), True, CLASSES),  # a boolean is not class 1
        (np.array([0.2, 0.8]), 1e308, CLASSES),
        (np.array([0.2, 0.8]), [0, 1, 1], "model outputs 1 row"),
        # The labels for a digits classifier that answers class labels:
        (np.array(3), True, CLASS_LABEL),
        (np.array(3), 0.5, CLASS_LABEL),
        (np.array(3), -1, CLASS_LABEL),
        (np.array(3), 1e308, CLASS_LABEL),
        (np.array(3), "three", CLASS_LABEL),
        (np.array(3, dtype=np.uint8), 256, r"at most 255"),
        (np.array([b"a"], dtype=object), 3, "so a label must be a string"),
        (np.array([1, 2]), 1, r"label has 1 element\(s\)"),
        (np.array(1), [[1], [2, 3]], "not a scalar or a regular array"),
        (np.array(1), {"a": 1}, CLASS_LABEL),
        (np.array(1), [], "neither a number"),
        (np.array(1.0), float("nan"), "so a label must be a number"),
        (np.array(1.0), False, "so a label must be a number"),
        (np.array(True), 1, "so a label must be true or false"),
    ],
)
def test_zero_one_rejects_labels_that_do_not_fit(
    prediction: np.ndarray, label: object, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        zero_one(prediction, label)


def test_regression_losses_scale_and_clip() -> None:
    assert absolute(np.array([2.0]), 2.5) == 0.5
    assert absolute(np.array([2.0]), 2.5, scale=10.0) == pytest.approx(0.05)
    assert absolute(np.array([2.0]), 100.0) == 1.0  # clipped
    assert squared(np.array([2.0]), 2.5) == 0.25
    assert squared(np.array([2.0]), 4.0, scale=4.0) == 0.25
    assert absolute(np.array([1.0, 3.0]), [2.0, 2.0]) == 1.0
    assert squared(np.array([1, 3], dtype=np.int32), [1, 3]) == 0.0
    assert absolute(np.array([np.inf]), 1.0) == 1.0  # a diverged model gets the full loss


@pytest.mark.parametrize(
    ("prediction", "label", "message"),
    [
        (np.array([1.0]), "high", "needs a numeric label"),
        (np.array([b"x"], dtype=object), 1.0, "needs a numeric prediction"),
        (np.array([1.0, 2.0]), 1.0, "element"),
        (np.array([1.0]), float("inf"), "needs a numeric label, finite"),
        (np.array([1.0]), True, "not a boolean"),
    ],
)
def test_regression_losses_reject_labels_that_do_not_fit(
    prediction: np.ndarray, label: object, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        absolute(prediction, label)
    with pytest.raises(InvalidInput, match=message):
        squared(prediction, label)


def test_get_loss_by_name() -> None:
    assert get_loss("zero_one") is zero_one
    assert get_loss("absolute", scale=2.0)(np.array([0.0]), 1.0) == 0.5
    assert get_loss("squared", scale=2.0)(np.array([0.0]), 1.0) == 0.25
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        get_loss("hinge")


def test_losses_are_always_in_the_unit_interval() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        pred = rng.normal(scale=100, size=3)
        label = rng.normal(scale=100, size=3)
        for fn in (absolute, squared):
            assert 0.0 <= fn(pred, label) <= 1.0
        assert zero_one(pred, int(rng.integers(3))) in (0.0, 1.0)
