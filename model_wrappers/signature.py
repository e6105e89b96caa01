"""A model's input and output tensors, and the checks a request must pass.

The signature is what ``ModelMetadata`` reports and what every request is held
to before the model sees it, so a wrong name, datatype or shape is the client's
INVALID_ARGUMENT with a message naming what was expected -- not an exception
deep inside a framework that would come back as INTERNAL.

Data of another datatype than a spec's is converted when the conversion is
lossless (``clipper.common.protocol.tensors.widens``: INT32 or FP32 into FP64,
not FP64 into FP32), here, once per request and before the model sees it, so a
model always receives the datatype it declared.

Dimension 0 is always the batch: it is -1 in a spec, and at least 1 in a
request. Other dimensions are fixed, or -1 for "any size". A signature with no
inputs is *open*: the model accepts any tensors (python callables and TorchScript
modules cannot say what they take), and only the batch rules apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from clipper.common.errors import InvalidInput, ModelError
from clipper.common.protocol.tensors import datatype_of, widened


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: its name, OIP datatype and shape (batch first, -1 for any)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def describe(self) -> str:
        return f"'{self.name}' ({self.datatype}, shape {list(self.shape)})"

    def matches(self, shape: Sequence[int]) -> bool:
        return len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape, strict=True)
        )

    @classmethod
    def of(cls, name: str, array: np.ndarray) -> TensorSpec:
        """The spec an output array implies: its datatype, and any batch size."""
        return cls(name, datatype_of(array.dtype), (-1, *array.shape[1:]))


def batch_size(tensors: Mapping[str, np.ndarray], kind: str = "input") -> int:
    """The common batch size of ``tensors``; InvalidInput when there is none."""
    rows: int | None = None
    for name, array in tensors.items():
        if array.ndim == 0:
            raise InvalidInput(f"{kind} '{name}' is a scalar; tensors need a batch dimension")
        if rows is None:
            rows = array.shape[0]
        elif array.shape[0] != rows:
            raise InvalidInput(
                f"{kind} '{name}' has {array.shape[0]} rows but the others have {rows}; "
                "every tensor of a batch has the same first dimension"
            )
    if rows is None:
        raise InvalidInput(f"the request has no {kind}s")
    if rows == 0:
        raise InvalidInput("the batch is empty: send at least one row")
    return rows


@dataclass(frozen=True)
class Signature:
    """What a model takes and returns; ``inputs == ()`` means any inputs."""

    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = field(default=())

    def expected(self) -> str:
        return ", ".join(spec.describe() for spec in self.inputs)

    def conform(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        """Check a decoded request; return it with every input in its spec's datatype
        (widened where that is lossless), and its batch size."""
        conformed = dict(inputs)
        if self.inputs:
            self._check_names(inputs)
            for spec in self.inputs:
                conformed[spec.name] = self._check_tensor(spec, inputs[spec.name])
        return conformed, batch_size(conformed)

    def _check_names(self, inputs: Mapping[str, np.ndarray]) -> None:
        names = {spec.name for spec in self.inputs}
        unknown = [name for name in inputs if name not in names]
        missing = [name for name in names if name not in inputs]
        if unknown or missing:
            problems = []
            if unknown:
                problems.append(f"unknown input {', '.join(repr(n) for n in unknown)}")
            if missing:
                problems.append(f"missing input {', '.join(repr(n) for n in sorted(missing))}")
            raise InvalidInput(f"{'; '.join(problems)}: this model takes {self.expected()}")

    @staticmethod
    def _check_tensor(spec: TensorSpec, array: np.ndarray) -> np.ndarray:
        if not spec.matches(array.shape):
            raise InvalidInput(
                f"input '{spec.name}' has shape {list(array.shape)}, "
                f"but this model takes {spec.describe()}"
            )
        converted = widened(array, spec.datatype)
        if converted is None:
            raise InvalidInput(
                f"input '{spec.name}' is {datatype_of(array.dtype)}, which does not convert "
                f"to {spec.datatype} without loss; this model takes {spec.describe()}"
            )
        return converted

    def check_outputs(self, outputs: Mapping[str, np.ndarray], rows: int) -> None:
        """A model must answer every row: N rows in, N rows out, in every output."""
        if not outputs:
            raise ModelError("the model returned no outputs")
        for name, array in outputs.items():
            got = array.shape[0] if array.ndim else None
            if got != rows:
                raise ModelError(
                    f"the model returned {got if got is not None else 'a scalar'} "
                    f"rows in output '{name}' for a batch of {rows}"
                )
            try:
                datatype_of(array.dtype)
            except InvalidInput as exc:
                raise ModelError(f"output '{name}': {exc.message}") from None
