"""Answers as Open Inference Protocol tensors, shared by the REST and gRPC layers.

OIP has no notion of a default answer, so the frontend signals one in the
response's ``parameters`` (which every OIP client can read and may ignore):

* ``query_id`` -- the first row's query id; the rows of one request have
  consecutive ids, usable with ``POST /{app}/feedback``;
* ``default`` (bool), ``default_rows`` (comma-separated row indices) and
  ``default_explanation`` (the first default's reason and detail) -- only when
  some row was answered with the app's default output;
* ``models`` -- the models whose outputs made the answer (comma-separated).

A default row holds the app's ``default_output`` cast to the output tensor's
datatype and row shape -- taken from a row that got a prediction, else from the
model's declared output, else from the default itself -- so set a default that
fits the output (e.g. ``-1`` for a class label; it is broadcast over a row of
scores). A model with several outputs: a mapping ``{output name: value}`` gives
each output its own default (when no row got a prediction and the model declares
no outputs, the mapping's names are the answer's outputs); any other value is
used for every output. When it cannot fit (``null``, a string for a numeric output) the
request fails with the status of the reason instead: 504 / DEADLINE_EXCEEDED
for the SLO, 503 / UNAVAILABLE for missing replicas, 500 / INTERNAL for model
errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from clipper.common.errors import (
    ClipperError,
    DeadlineExceeded,
    InvalidInput,
    ModelError,
    Unavailable,
)
from clipper.common.protocol import pb
from clipper.common.protocol.tensors import DTYPES
from clipper.frontend.queries import Answer
from clipper.frontend.records import fill, from_mapping, unpack
from clipper.frontend.routing.apps import AppRuntime
from clipper.frontend.signature import Signature

_REASON_ERRORS: dict[str, type[ClipperError]] = {
    "slo": DeadlineExceeded,
    "unavailable": Unavailable,
    "retries_exhausted": Unavailable,
}


def stack_outputs(answers: list[Answer], declared: np.ndarray | None = None) -> np.ndarray:
    """One output tensor, batch first, from the rows' answers (defaults cast to fit).

    ``declared`` is an empty row of the model's declared output (datatype and row
    shape), when the model declares one."""
    template = next((np.asarray(a.output) for a in answers if not a.default), declared)
    if template is None:
        template = _default_row(answers[0], None)
    if all(not a.default for a in answers):
        if len(answers) == 1:  # a view, not np.stack's copy (and its cost per call)
            return np.asarray(answers[0].output)[np.newaxis]
        return np.stack([a.output for a in answers])
    return np.stack([_default_row(a, template) if a.default else a.output for a in answers])


def output_tensors(
    answers: list[Answer],
    declared: np.ndarray | None,
    output_name: str,
    requested: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """The answer's output tensors by name: every output, or the ``requested`` ones
    (an unknown name is ``InvalidInput``)."""
    stacked = stack_outputs(answers, declared)
    tensors = {output_name: stacked} if stacked.dtype.names is None else unpack(stacked)
    if not requested:
        return tensors
    unknown = [name for name in requested if name not in tensors]
    if unknown:
        known = ", ".join(f"'{n}'" for n in tensors)
        raise InvalidInput(f"unknown output {unknown[0]!r}; the app's outputs are {known}")
    return {name: tensors[name] for name in requested}


def declared_inputs(app: AppRuntime, names: list[Any]) -> dict[str, Signature]:
    """The app's declared inputs by name, once a request's input ``names`` have been
    checked against them (``check_input_names``)."""
    declared = {sig.name: sig for sig in app.input_signatures()}
    check_input_names(names, list(declared))
    return declared


def check_input_names(names: list[Any], declared: list[str]) -> None:
    """A request's input names: distinct strings and, when the model declares its
    inputs, exactly those (a missing or unknown one is ``InvalidInput`` naming them)."""
    if not all(isinstance(name, str) and name for name in names):
        raise InvalidInput(f"every input needs a name; got {names!r}")
    if len(set(names)) != len(names):
        raise InvalidInput(f"input names repeat: {names!r}")
    if not declared:
        return
    missing = [name for name in declared if name not in names]
    unknown = [name for name in names if name not in declared]
    if missing or unknown:
        problems = [f"missing input {n!r}" for n in missing] + [
            f"unknown input {n!r}" for n in unknown
        ]
        expected = ", ".join(f"'{n}'" for n in declared)
        raise InvalidInput(f"{'; '.join(problems)}: the app takes {expected}")


def _default_row(answer: Answer, template: np.ndarray | None) -> np.ndarray:
    value = answer.output
    try:
        if value is None:
            raise TypeError("null")
        if template is not None and template.dtype.names is not None:
            return fill(template.dtype, value)
        if isinstance(value, Mapping):
            if template is None:
                return from_mapping(value)
            value = next(iter(value.values()), None)  # a mapping's first value: the primary
            if value is None:
                raise TypeError("null")
        row = np.asarray(value) if template is None else np.asarray(value, dtype=template.dtype)
        if template is not None and row.shape != template.shape:
            row = np.broadcast_to(row, template.shape)
        return row
    except (TypeError, ValueError):
        pass
    where = f" ({template.dtype}, row shape {list(template.shape)})" if template is not None else ""
    error = _REASON_ERRORS.get(answer.reason or "", ModelError)
    raise error(
        f"{answer.explanation}; the app's default output {value!r} does not fit "
        f"the output tensor{where}, so it cannot be sent over the Open Inference Protocol"
    )


def response_parameters(answers: list[Answer]) -> dict[str, Any]:
    params: dict[str, Any] = {"query_id": answers[0].query_id}
    defaults = [i for i, a in enumerate(answers) if a.default]
    if defaults:
        params["default"] = True
        params["default_rows"] = ",".join(map(str, defaults))
        params["default_explanation"] = answers[defaults[0]].explanation or ""
    models = dict.fromkeys(m for a in answers for m in a.models)
    if models:
        params["models"] = ",".join(models)
    return params


def declared_row(outputs: list[pb.ModelMetadataResponse.TensorMetadata]) -> np.ndarray | None:
    """An empty row shaped as the declared outputs (a record when several), if every
    row shape is fixed."""
    if not outputs:
        return None
    fields = []
    for spec in outputs:
        row_shape = tuple(int(d) for d in spec.shape[1:])
        if any(d < 0 for d in row_shape) or spec.datatype not in DTYPES:
            return None
        fields.append((spec.name, DTYPES[spec.datatype], row_shape))
    if len(fields) == 1:
        return np.zeros(fields[0][2], dtype=fields[0][1])
    return np.zeros((), dtype=np.dtype(fields))
