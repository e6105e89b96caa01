"""Feedback: turn a model's prediction and the true label into a loss in [0, 1].

Every policy learns from losses in [0, 1], so the bandit algorithms' guarantees
hold and policies stay comparable. Labels come from clients (JSON or gRPC), so a
label that cannot be compared with the model's output -- wrong shape, a string
for a numeric model, a class index out of range -- is the client's error and
raises ``InvalidInput`` naming what was expected (``labels.check_label``: a
boolean, a fraction, a negative or a huge number for a classifier is an error,
never a wrong answer). A prediction that is NaN is the model's fault and simply
counts as a full loss.

- ``zero_one``: classification. A row of floats with more than one element is a
  vector of class scores and is compared by argmax with an integer class index
  (or with a one-hot/score label of the same shape). Anything else (integer,
  boolean, string or bytes labels, a single float) is compared element by
  element. A row with several positions (e.g. per-token labels) scores the
  fraction of positions that are wrong, which is plain 0-1 loss for one label.
- ``absolute`` / ``squared``: regression. Mean absolute / squared error divided
  by ``scale`` (``scale**2`` for squared), clipped to 1: ``scale`` is the error
  that counts as completely wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import numpy as np

from clipper.common.errors import InvalidInput
from clipper.frontend.selection.labels import OutputSpec, check_label

LossName = Literal["zero_one", "absolute", "squared"]
LossFn = Callable[[np.ndarray, Any], float]


def zero_one(prediction: np.ndarray, label: Any) -> float:
    """Fraction of wrong labels: 0.0 when the prediction is right, 1.0 when wrong."""
    pred = np.asarray(prediction)
    check_label(label, OutputSpec.of_prediction(pred), "zero_one")
    if type(label) is int or isinstance(label, np.integer):
        fast = _class_index_loss(pred, int(label))
        if fast is not None:
            return fast
    truth = _label_array(label)
    if _is_scores(pred):
        return _scores_loss(pred, truth)
    if pred.dtype.kind in "OSU" or truth.dtype.kind in "OSU":
        pred, truth = _as_text(pred), _as_text(truth, what="label")
    _same_size(pred, truth)
    if pred.dtype.kind == "f" and np.isnan(pred).any():
        return 1.0
    return float(np.mean(pred.reshape(truth.shape) != truth))


def absolute(prediction: np.ndarray, label: Any, scale: float = 1.0) -> float:
    """Mean absolute error over ``scale``, clipped to [0, 1]."""
    error = _numeric_error(prediction, label)
    return 1.0 if error is None else min(1.0, float(np.mean(np.abs(error))) / scale)


def squared(prediction: np.ndarray, label: Any, scale: float = 1.0) -> float:
    """Mean squared error over ``scale**2``, clipped to [0, 1]."""
    error = _numeric_error(prediction, label)
    return 1.0 if error is None else min(1.0, float(np.mean(np.square(error))) / scale**2)


LOSSES: dict[str, Callable[..., float]] = {
    "zero_one": zero_one,
    "absolute": absolute,
    "squared": squared,
}


def get_loss(name: str, scale: float = 1.0) -> LossFn:
    """The loss function called ``name``; ``scale`` applies to the regression losses."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss '{name}'; expected one of {', '.join(LOSSES)}")
    if name == "zero_one":
        return zero_one
    return partial(LOSSES[name], scale=scale)


def _class_index_loss(pred: np.ndarray, label: int) -> float | None:
    """The common cases, without the general path's array conversions (~1 us vs ~10):
    an integer label against one row of class scores or one integer label."""
    if pred.ndim == 1 and pred.dtype.kind == "f" and pred.shape[0] > 1:
        if not 0 <= label < pred.shape[0]:
            return None  # the general path explains the error
        best = int(pred.argmax())  # the first NaN, if there is one
        return 0.0 if best == label and not np.isnan(pred[best]) else 1.0
    if pred.size == 1 and pred.dtype.kind in "iu":
        return 0.0 if pred.item() == label else 1.0
    return None


def _label_array(label: Any) -> np.ndarray:
    if label is None:
        raise InvalidInput("feedback needs a label; got none")
    try:
        truth = np.asarray(label)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInput(f"label {label!r} is not a scalar or a regular array: {exc}") from None
    if truth.dtype.kind not in "biufOSU" or truth.size == 0 or not _all_text_if_object(truth):
        raise InvalidInput(f"label {label!r} is neither a number, a string nor an array of them")
    if truth.dtype.kind == "f" and not np.isfinite(truth).all():
        raise InvalidInput(f"label {label!r} is not finite")
    return truth


def _all_text_if_object(values: np.ndarray) -> bool:
    return values.dtype.kind != "O" or all(isinstance(v, str | bytes) for v in values.flat)


def _is_scores(pred: np.ndarray) -> bool:
    return pred.dtype.kind == "f" and pred.ndim >= 1 and pred.shape[-1] > 1


def _scores_loss(pred: np.ndarray, truth: np.ndarray) -> float:
    n_classes = pred.shape[-1]
    if truth.shape == pred.shape and truth.dtype.kind in "biuf":
        truth = truth.argmax(axis=-1)  # a one-hot or score label
    elif truth.dtype.kind not in "biuf" or not np.all(truth == np.round(truth)):
        raise InvalidInput(
            f"label {truth.tolist()!r} is not a class index; the model outputs "
            f"{n_classes} class scores, so the label must be an integer in [0, {n_classes})"
        )
    if truth.size != pred.size // n_classes:
        raise InvalidInput(
            f"label has {truth.size} element(s); the model outputs {pred.size // n_classes} "
            f"row(s) of {n_classes} class scores"
        )
    truth = truth.astype(np.int64).reshape(pred.shape[:-1])
    if truth.min() < 0 or truth.max() >= n_classes:
        raise InvalidInput(
            f"class index {truth.tolist()!r} is out of range for {n_classes} class scores"
        )
    if np.isnan(pred).any():
        return 1.0
    return float(np.mean(pred.argmax(axis=-1) != truth))


def _as_text(values: np.ndarray, what: str = "prediction") -> np.ndarray:
    """Strings and bytes compare as text, so a JSON label "cat" matches b"cat"."""
    if values.dtype.kind not in "OSU":
        raise InvalidInput(
            f"cannot compare a text label with a numeric prediction (or a numeric label "
            f"with a text prediction): the {what} is {values.tolist()!r}"
        )
    flat = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values.flat]
    if not all(isinstance(v, str) for v in flat):
        raise InvalidInput(f"the {what} {values.tolist()!r} mixes text with other values")
    return np.array(flat, dtype=object).reshape(values.shape)


def _same_size(pred: np.ndarray, truth: np.ndarray) -> None:
    if pred.size != truth.size:
        raise InvalidInput(
            f"label has {truth.size} element(s) (shape {list(truth.shape)}); the model "
            f"outputs {pred.size} (shape {list(pred.shape)}) per row"
        )


def _numeric_error(prediction: np.ndarray, label: Any) -> np.ndarray | None:
    """prediction - label as floats, or None when the prediction is not finite."""
    pred = np.asarray(prediction)
    check_label(label, OutputSpec.of_prediction(pred), "absolute")
    truth = _label_array(label)
    if truth.dtype.kind not in "biuf":
        raise InvalidInput(f"a regression loss needs a numeric label; got {label!r}")
    if pred.dtype.kind not in "biuf":
        raise InvalidInput(
            f"a regression loss needs a numeric prediction; the model outputs {pred.dtype}"
        )
    _same_size(pred, truth)
    error = pred.astype(np.float64).reshape(truth.shape) - truth.astype(np.float64)
    return error if np.isfinite(error).all() else None
