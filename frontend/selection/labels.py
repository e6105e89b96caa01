"""Which labels an app's outputs admit; checked before any label is used.

A label that cannot be the truth for what the models output is the client's
mistake and must be a 400, not a wrong answer: scored, ``true``, 0.5, -1 or
1e308 sent to a digits classifier would count every model as wrong and move
the selection weights. So a label is checked against the outputs twice: against
the models' declared output (OIP metadata: datatype and shape) before any model
runs or any query id is used up, and against the actual prediction when it is
scored (the declared shape may be ``-1``; the prediction's never is).

What a label must be, by the outputs and the app's loss:

* ``zero_one``, integer outputs (class labels): a non-negative integer within
  the datatype's range (an integral float such as ``3.0`` counts as 3);
* ``zero_one``, float outputs with K > 1 values per row (class scores): a class
  index, an integer in [0, K), or a one-hot/score list of K finite numbers;
* ``zero_one``, other float outputs: a finite number;
* BOOL outputs: ``true`` or ``false``; BYTES (text) outputs: a string;
* ``absolute`` / ``squared`` (regression): a finite number.

A boolean is never a number here (JSON ``true`` is not 1). Lists hold one such
label per position of a row. What the outputs cannot tell -- how many classes a
model that outputs a class label knows -- is not checked: 11 for a digits
classifier is a wrong answer, not an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipper.common.errors import InvalidInput

_KINDS = {"BOOL": "b", "UINT": "u", "INT": "i", "FP": "f", "BYTES": "O"}


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """What one row of the models' output is: numpy dtype kind, row shape, name."""

    kind: str
    """``b``, ``i``, ``u``, ``f`` or ``O`` (text)."""
    row_shape: tuple[int, ...]
    """One row's shape; ``-1`` where unknown."""
    name: str
    """The datatype as a message names it (``INT64``, ``float64``)."""
    max_int: int = 0
    """Integer outputs: the largest value the datatype holds."""

    @classmethod
    def of_prediction(cls, prediction: np.ndarray) -> OutputSpec:
        dtype = prediction.dtype
        kind = "O" if dtype.kind in "OSU" else dtype.kind
        top = int(np.iinfo(dtype).max) if kind in "iu" else 0
        return cls(kind, tuple(prediction.shape), str(dtype), top)

    @classmethod
    def of_metadata(cls, datatype: str, shape: list[int]) -> OutputSpec | None:
        """From OIP output metadata (``shape`` with the batch dimension); ``None``
        for a datatype that says nothing useful (FP16 and friends are ``f``)."""
        match = re.fullmatch(r"(BOOL|UINT|INT|FP|BYTES)(\d*)", datatype)
        if match is None:
            return None
        kind, bits = _KINDS[match[1]], int(match[2] or 0)
        top = (1 << bits) - 1 if kind == "u" else (1 << (bits - 1)) - 1 if kind == "i" else 0
        return cls(kind, tuple(shape[1:]), datatype, top)

    @property
    def classes(self) -> int:
        """Float outputs of K > 1 known values per row: K (class scores); else 0."""
        last = self.row_shape[-1] if self.row_shape else 1
        return last if self.kind == "f" and last > 1 else 0


def check_label(label: Any, spec: OutputSpec, loss: str) -> None:
    """``InvalidInput`` saying what is expected unless ``label`` fits ``spec``."""
    if label is None:
        raise InvalidInput("feedback needs a label; got none")
    if loss != "zero_one":
        if spec.kind in "biuf" and not all(_is_number(v) for v in _leaves(label)):
            _reject(label, f"a {loss} loss needs a numeric label, finite and not a boolean")
        return
    if spec.kind in "iu":
        if not all(_is_class(v, spec.max_int) for v in _leaves(label)):
            _reject(
                label,
                f"the models output {spec.name} class labels, so a label must be a "
                f"non-negative integer (at most {spec.max_int})",
            )
    elif spec.classes:
        _check_class_index(label, spec.classes)
    elif spec.kind == "f":
        if not all(_is_number(v) for v in _leaves(label)):
            _reject(label, f"the models output {spec.name} numbers, so a label must be a number")
    elif spec.kind == "b":
        if not all(isinstance(v, bool | np.bool_) for v in _leaves(label)):
            _reject(label, "the models output BOOL values, so a label must be true or false")
    elif not all(isinstance(v, str | bytes | np.str_ | np.bytes_) for v in _leaves(label)):
        _reject(label, "the models output text, so a label must be a string")


def _check_class_index(label: Any, n_classes: int) -> None:
    leaves = list(_leaves(label))
    one_hot = (
        isinstance(label, list | tuple | np.ndarray)
        and len(label) == n_classes
        and all(_is_number(v) for v in leaves)
    )
    if not one_hot and not all(_is_class(v, n_classes - 1) for v in leaves):
        _reject(
            label,
            f"the models output {n_classes} class scores per row, so a label must be a "
            f"class index, an integer in [0, {n_classes}) (or a one-hot list of {n_classes})",
        )


def _reject(label: Any, expected: str) -> None:
    raise InvalidInput(f"label {_show(label)} is not valid: {expected}")


def _show(label: Any) -> str:
    text = repr(label.tolist() if isinstance(label, np.ndarray) else label)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _leaves(label: Any) -> Iterator[Any]:
    if isinstance(label, list | tuple):
        for item in label:
            yield from _leaves(item)
    elif isinstance(label, np.ndarray):
        yield from label.flat
    else:
        yield label


def _is_number(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | np.integer):
        return True
    return isinstance(value, float | np.floating) and math.isfinite(value)


def _is_class(value: Any, top: int) -> bool:
    """A non-negative integer (or integral float) no larger than ``top``."""
    if not _is_number(value):
        return False
    if isinstance(value, float | np.floating) and not float(value).is_integer():
        return False
    return 0 <= value <= top
