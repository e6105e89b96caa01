"""How an ensemble turns the outputs that arrived into one answer.

Straggler mitigation: at the deadline the frontend combines whatever arrived.
The weights of the models that answered are renormalised among themselves, so a
missing model neither drags the answer towards zero nor blocks it.

- Labels (integer, boolean, text): weighted vote; a tie goes to the label of the
  earliest model in selection order, so the result is deterministic.
- Class scores and regression values (floats): weighted mean, in the outputs'
  own dtype.

Confidence (Clipper, section 5.2.2) is the share of the *selected* models that
agree with the answer: same label; same argmax for class scores; within
``rtol``/``atol`` for regression. A model that missed the deadline does not
agree, so one answer out of three can never look like a unanimous ensemble and
an app's confidence threshold also guards against too few models answering.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

from clipper.common.errors import ModelError
from clipper.frontend.selection.policy import Combined, Selection

Kind = Literal["auto", "label", "scores", "regression"]


def combine_outputs(
    selection: Selection,
    outputs: Mapping[str, np.ndarray],
    kind: Kind = "auto",
    rtol: float = 0.1,
    atol: float = 0.0,
) -> Combined:
    """Combine one row's ``outputs`` (a non-empty subset of ``selection.models``)."""
    answered = tuple(m for m in selection.models if m in outputs)
    if not answered:
        raise ValueError("combine needs the output of at least one selected model")
    missing = tuple(m for m in selection.models if m not in outputs)
    rows = [np.asarray(outputs[m]) for m in answered]
    _check_shapes(answered, rows)
    weights = np.array([selection.weights.get(m, 0.0) for m in answered], dtype=np.float64)
    if not weights.sum() > 0:
        weights = np.ones(len(rows))
    kind = _resolve(kind, rows)
    if kind == "label":
        output = _vote(rows, weights)
        agree = sum(_key(r) == _key(output) for r in rows)
    else:
        stacked = np.stack(rows)
        output = _mean(stacked, weights, rows[0].dtype)
        agree = int(_agreeing(stacked, output, kind, rtol, atol).sum())
    return Combined(output, answered, agree / len(selection.models), missing)


def _check_shapes(models: tuple[str, ...], rows: list[np.ndarray]) -> None:
    shapes = {r.shape for r in rows}
    if len(shapes) > 1:
        detail = ", ".join(f"{m}: {list(r.shape)}" for m, r in zip(models, rows, strict=True))
        raise ModelError(f"ensemble models disagree on the output shape ({detail})")


def _resolve(kind: Kind, rows: list[np.ndarray]) -> Kind:
    if kind == "auto":
        if not any(r.dtype.kind in "fc" for r in rows):
            return "label"
        kind = "scores" if rows[0].ndim >= 1 and rows[0].shape[-1] > 1 else "regression"
    if kind != "label" and any(r.dtype.kind not in "biufc" for r in rows):
        raise ModelError(
            f"cannot average the ensemble's {kind} outputs: some are not numeric ("
            + ", ".join(str(r.dtype) for r in rows)
            + ")"
        )
    if kind == "scores" and rows[0].ndim == 0:
        raise ModelError("the ensemble is configured for class scores but outputs one value")
    return kind


def _key(row: np.ndarray) -> tuple[object, ...]:
    """Equal labels vote together whatever their width (int32 3 == int64 3)."""
    return tuple(row.ravel().tolist())


def _vote(rows: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    tally: dict[tuple[object, ...], float] = {}
    first: dict[tuple[object, ...], np.ndarray] = {}
    for row, weight in zip(rows, weights, strict=True):
        key = _key(row)
        tally[key] = tally.get(key, 0.0) + float(weight)
        first.setdefault(key, row)
    best = max(tally.values())
    winner = next(k for k in first if tally[k] == best)  # dicts keep selection order
    return first[winner]


def _mean(stacked: np.ndarray, weights: np.ndarray, dtype: np.dtype) -> np.ndarray:
    flat = stacked.reshape(len(stacked), -1).astype(np.float64, copy=False)
    mean = ((weights / weights.sum()) @ flat).reshape(stacked.shape[1:])
    return mean.astype(dtype if dtype.kind in "fc" else np.float64, copy=False)


def _agreeing(
    stacked: np.ndarray, output: np.ndarray, kind: Kind, rtol: float, atol: float
) -> np.ndarray:
    """Per model: does its row agree with the combined output?"""
    if kind == "scores":
        same = stacked.argmax(axis=-1) == output.argmax(axis=-1)
    else:
        same = np.isclose(stacked, output, rtol=rtol, atol=atol)
    return same.reshape(len(stacked), -1).all(axis=1)
