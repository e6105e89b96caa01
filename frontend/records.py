"""Several tensors as one array of records: how multi-input and multi-output rows travel.

A query's row is one numpy array everywhere in the frontend (queues, batches,
chunk delivery, the cache, the answer). A model with several inputs or outputs
fits that as a *structured* array: one record per row, one field per tensor
(``(name, dtype, row shape)``). Every operation the data path does on rows --
``len``, slicing, fancy indexing, ``np.concatenate``, ``np.stack``, writing a
chunk's outputs at an offset -- works on records unchanged, and a record's dtype
names its tensors and their row shapes, so two requests with different inputs
are two kinds of chunk and never share a batch (``batching.queue``).

So the single-input, single-output path is exactly what it was: a plain array,
never packed; only requests with several inputs, and answers of models with
several outputs, pay for packing (one copy per tensor per batch).

The *primary* output is the first: what ensembles combine, what labels are
scored against, what Clipper's REST API answers unless it is asked for another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from clipper.common.errors import InvalidInput


def pack(tensors: Mapping[str, np.ndarray], what: str = "input") -> np.ndarray:
    """One record per row from ``{name: array}`` (each batch first, in this order)."""
    if not tensors:
        raise InvalidInput(f"the request names no {what}s")
    rows: int | None = None
    for name, array in tensors.items():
        if array.ndim == 0:
            raise InvalidInput(f"{what} '{name}' needs a batch dimension")
        if rows is None:
            rows = len(array)
        elif len(array) != rows:
            raise InvalidInput(
                f"{what} '{name}' has {len(array)} rows but the others have {rows}; "
                "every tensor of a request has the same first dimension"
            )
    dtype = np.dtype([(name, a.dtype, a.shape[1:]) for name, a in tensors.items()])
    records = np.empty(rows or 0, dtype=dtype)
    for name, array in tensors.items():
        records[name] = array
    return records


def unpack(records: np.ndarray) -> dict[str, np.ndarray]:
    """``{name: array}`` from records (views, one per field)."""
    return {name: records[name] for name in records.dtype.names or ()}


def is_record(value: Any) -> bool:
    return getattr(getattr(value, "dtype", None), "names", None) is not None


def primary(value: np.ndarray) -> np.ndarray:
    """A row's first output (the row itself when it has only one)."""
    names = value.dtype.names
    return np.asarray(value[names[0]]) if names else value


def field(value: np.ndarray, name: str | None) -> np.ndarray:
    """One output of a row: ``name``, or the primary when ``name`` is None."""
    names = value.dtype.names or ()
    if name is None:
        return primary(value)
    if name not in names:
        raise InvalidInput(f"unknown output '{name}'; the app's outputs are {_listed(names)}")
    return np.asarray(value[name])


def with_primary(record: np.ndarray, value: np.ndarray) -> np.ndarray:
    """A copy of ``record`` whose primary output is ``value`` (an ensemble's combined one)."""
    out = np.array(record, copy=True)
    names = out.dtype.names or ()
    out[names[0]] = value
    return out


def fill(template_dtype: np.dtype, value: Any) -> np.ndarray:
    """A record of ``template_dtype`` from a default: a mapping gives each output its
    own value (every output must be named), anything else fills every output. Each
    value is cast to its output's dtype and broadcast over its row shape;
    ``TypeError``/``ValueError`` when it does not fit."""
    out = np.zeros((), dtype=template_dtype)
    for name in template_dtype.names or ():
        sub = template_dtype.fields[name][0]  # type: ignore[index]
        if isinstance(value, Mapping):
            if name not in value:
                raise ValueError(f"no default for output '{name}'")
            part = value[name]
        else:
            part = value
        if part is None:
            raise TypeError("null")
        out[name] = np.broadcast_to(np.asarray(part, dtype=sub.base), sub.shape)
    return out


def from_mapping(value: Mapping[str, Any]) -> np.ndarray:
    """A record holding a mapping's values as they are (a default with no template)."""
    parts = {str(name): np.asarray(part) for name, part in value.items()}
    if not parts or any(p.dtype.kind not in "biufcUSO" for p in parts.values()):
        raise TypeError("a default output mapping needs values that are numbers or text")
    return pack({name: part[None] for name, part in parts.items()}, "output")[0]


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names) or "unknown"
