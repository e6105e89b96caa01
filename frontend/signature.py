"""What one row of an app's input looks like, and turning client data into rows.

An app's signature is, in order of preference: the app's configured ``input``
(``routing.AppConfig.input``); else what its first model's containers declare in
``ModelMetadata`` (its first input, without the batch dimension), learned when
a replica first answers its health check, and forgotten whenever the routing
table updates the app (its model or version may have been swapped for one with
another input); else nothing, and rows are taken as they come (JSON numbers as
float64 or int64).

Client data must fit the signature, and when it does not the error says what
was expected, because that is the message a client author acts on:

* JSON (Clipper's ``input``/``input_batch``, OIP's ``data``) is converted to the
  signature's dtype only when the conversion is safe: integers may feed a float
  input; floats may not feed an integer one, text never feeds a number.
* OIP tensors carry a datatype, which must equal the signature's or widen to it
  without loss (``clipper.common.protocol.tensors.widens``, the rule the model
  server applies too: INT32 or FP32 into FP64, never FP64 into FP32). Widening
  happens here, once per request and before the rows are queued, so a batch
  holds one dtype and the model receives the datatype it declared.
* Shapes must match, ``-1`` matching any size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipper.common.errors import InvalidInput
from clipper.common.protocol.tensors import DTYPES, datatype_of, dtype_of, widened, widens
from clipper.common.routing import TensorSpec

# Which numpy kinds inferred from JSON may be converted to a signature's kind.
_SAFE_FROM_JSON = {
    "f": "fiu",
    "i": "iu",
    "u": "iu",
    "b": "b",
    "O": "OUS",
}


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    datatype: str
    row_shape: tuple[int, ...]
    """One row's shape, without the batch dimension; -1 matches any size."""

    @classmethod
    def from_spec(cls, spec: TensorSpec) -> Signature:
        dtype_of(spec.datatype, spec.name)  # an unknown datatype fails here, loudly
        return cls(spec.name, spec.datatype, tuple(spec.shape))

    @classmethod
    def from_metadata(cls, name: str, datatype: str, shape: list[int]) -> Signature:
        """From a container's tensor metadata, whose first dimension is the batch."""
        return cls(name, datatype, tuple(int(d) for d in shape[1:]))

    @property
    def dtype(self) -> np.dtype:
        return DTYPES[self.datatype]

    def describe(self) -> str:
        dims = ", ".join("any" if d < 0 else str(d) for d in self.row_shape)
        return f"{self.datatype} rows of shape [{dims}]"

    def matches(self, row_shape: tuple[int, ...]) -> bool:
        if len(row_shape) != len(self.row_shape):
            return False
        return all(e < 0 or e == d for e, d in zip(self.row_shape, row_shape, strict=True))

    def check_rows(self, rows: np.ndarray, what: str) -> np.ndarray:
        """``rows`` (batch first) must have the signature's datatype and row shape."""
        if rows.ndim == 0 or not self.matches(rows.shape[1:]):
            dims = ", ".join(["batch", *(str(d) for d in self.row_shape)])
            raise InvalidInput(
                f"{what} has shape {list(rows.shape)}; expected [{dims}] ({self.describe()})"
            )
        return rows


def rows_from_json(value: Any, batch: bool, signature: Signature | None, what: str) -> np.ndarray:
    """Clipper REST data: one row (``batch`` False) or a list of rows, as an array."""
    array = _from_json(value, signature, what)
    if not batch:
        if signature is not None and not signature.matches(array.shape):
            raise InvalidInput(
                f"{what} has shape {list(array.shape)}; expected one row ({signature.describe()})"
            )
        array = array.reshape((1, *array.shape))
    elif array.ndim == 0:
        raise InvalidInput(f"{what} must be a list of rows, got a single value")
    if len(array) == 0:
        raise InvalidInput(f"{what} has no rows")
    return signature.check_rows(array, what) if signature else array


def tensor_from_json(
    data: Any, datatype: str, shape: list[int], signature: Signature | None, name: str
) -> np.ndarray:
    """An OIP JSON tensor (``data`` flat or nested) as an array of ``shape``."""
    dtype = dtype_of(datatype, name)
    if signature is not None and not widens(datatype, signature.datatype):
        raise _not_lossless(name, datatype, signature)
    array = _convert(data, dtype, f"input '{name}'")
    count = math.prod(shape)  # not np.prod: ~20x its cost on a short list
    if array.size != count:
        raise InvalidInput(
            f"input '{name}' has {array.size} elements, but its shape {list(shape)} needs {count}"
        )
    return array.reshape(shape)


def check_tensor(array: np.ndarray, signature: Signature | None, name: str) -> np.ndarray:
    """A decoded OIP tensor (raw or typed) against the signature."""
    if signature is None:
        if array.ndim == 0:
            raise InvalidInput(f"input '{name}' needs a batch dimension")
        return array
    rows = signature.check_rows(array, f"input '{name}'")
    converted = widened(rows, signature.datatype)
    if converted is None:
        raise _not_lossless(name, datatype_of(array.dtype), signature)
    return converted


def _not_lossless(name: str, datatype: str, signature: Signature) -> InvalidInput:
    return InvalidInput(
        f"input '{name}' has datatype {datatype}; the app expects {signature.datatype} "
        f"(other datatypes are converted only without loss, e.g. INT32 or FP32 to FP64)"
    )


def _from_json(value: Any, signature: Signature | None, what: str) -> np.ndarray:
    if signature is None:
        try:
            array = np.asarray(value)
        except ValueError as exc:
            raise InvalidInput(f"{what} is not a regular array: {exc}") from None
        if array.dtype.kind not in "biufUS":
            raise InvalidInput(f"{what} must hold numbers or strings")
        return array
    return _convert(value, signature.dtype, what)


def _convert(value: Any, dtype: np.dtype, what: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise InvalidInput(
            f"{what} is not a regular array (rows of different lengths?): {exc}"
        ) from None
    kind = "O" if dtype.kind in "OSU" else dtype.kind
    if array.dtype.kind not in _SAFE_FROM_JSON[kind] and array.size:
        raise InvalidInput(
            f"{what} holds {_kind_name(array.dtype)} values; expected {datatype_of(dtype)}"
        )
    if kind == "O":
        return array.astype(object)
    return array if array.dtype == dtype else array.astype(dtype)


def _kind_name(dtype: np.dtype) -> str:
    return {"f": "float", "i": "integer", "u": "integer", "b": "boolean", "U": "text"}.get(
        dtype.kind, str(dtype)
    )
