"""numpy <-> Open Inference Protocol tensors.

Inputs may arrive typed (``InferTensorContents``) or raw (``raw_input_contents``,
one little-endian, row-major buffer per input). Raw buffers are decoded with
``np.frombuffer``: no copy, so the arrays are read-only views of the request.
Outputs always go out raw, which costs one ``tobytes`` per tensor instead of a
Python loop over every element.

Every size or type mismatch raises ``InvalidInput`` naming the tensor and what
was expected, because these are the errors a client author has to act on.

Widening (``widens`` / ``widened``) is the one rule, used by the frontend and by
the model server alike, for data whose datatype is not the one a model takes:
it is converted when every value survives (INT32 or FP32 into FP64, UINT8 into
INT16, FP16 into FP32), and refused otherwise (FP64 into FP32, FP32 into INT64).
Triton refuses every mismatch; MLServer users expect the lossless ones to work.
The rule is numpy's ``can_cast(casting="safe")`` with three exceptions: an
integer widens to a float only when the float's mantissa holds every integer of
that type (numpy calls INT64 into FP64 safe, yet beyond 2**53 it rounds); BOOL
widens to nothing (numpy would make True a 1, but a truth value sent to a number
input is more likely the wrong tensor than a feature, and JSON ``true`` is
refused the same way); and BYTES never converts.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping

import numpy as np

from clipper.common.errors import InvalidInput
from clipper.common.protocol import grpc_predict_v2_pb2 as pb

# OIP datatype -> numpy dtype (little-endian, as the protocol's raw layout is).
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}

# OIP datatype -> the InferTensorContents field that carries it when typed.
# FP16 has no typed field: the protocol requires raw contents for it.
CONTENTS_FIELDS: dict[str, str] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

_BY_KIND_SIZE = {(dt.kind, dt.itemsize): name for name, dt in DTYPES.items() if name != "BYTES"}


def datatype_of(dtype: np.dtype) -> str:
    """The OIP datatype name for a numpy dtype (strings and bytes map to BYTES)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return "BYTES"
    try:
        return _BY_KIND_SIZE[(dtype.kind, dtype.itemsize)]
    except KeyError:
        raise InvalidInput(f"numpy dtype {dtype} has no Open Inference Protocol datatype") from None


def dtype_of(datatype: str, tensor: str = "") -> np.dtype:
    """The numpy dtype for an OIP datatype name; an unknown name is the client's error."""
    try:
        return DTYPES[datatype]
    except KeyError:
        where = f"tensor '{tensor}': " if tensor else ""
        raise InvalidInput(
            f"{where}unknown datatype '{datatype}'; expected one of {', '.join(DTYPES)}"
        ) from None


def widens(source: str, target: str) -> bool:
    """Whether data of OIP datatype ``source`` converts to ``target`` losslessly."""
    if source == target:
        return True
    if {source, target} & {"BOOL", "BYTES"}:
        return False
    src, dst = dtype_of(source), dtype_of(target)
    if src.kind in "iu" and dst.kind == "f":
        value_bits = src.itemsize * 8 - (src.kind == "i")
        return value_bits <= np.finfo(dst).nmant + 1
    return bool(np.can_cast(src, dst, casting="safe"))


def widened(array: np.ndarray, datatype: str) -> np.ndarray | None:
    """``array`` as ``datatype``: itself when it already is, a converted copy when
    the conversion is lossless (``widens``), else None for the caller to refuse."""
    source = datatype_of(array.dtype)
    if source == datatype:
        return array
    if not widens(source, datatype):
        return None
    return array.astype(DTYPES[datatype])


def check_shape(shape: Iterable[int], tensor: str) -> tuple[int, ...]:
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise InvalidInput(f"tensor '{tensor}': shape {list(dims)} has a negative dimension")
    return dims


def _decode_bytes_elements(buffer: bytes, count: int, tensor: str) -> np.ndarray:
    """BYTES raw layout: each element is a 4-byte little-endian length, then the bytes."""
    out = np.empty(count, dtype=object)
    offset = 0
    for i in range(count):
        if offset + 4 > len(buffer):
            raise InvalidInput(f"tensor '{tensor}': raw BYTES buffer ends before element {i}")
        (length,) = struct.unpack_from("<I", buffer, offset)
        offset += 4
        if offset + length > len(buffer):
            raise InvalidInput(f"tensor '{tensor}': raw BYTES element {i} runs past the buffer")
        out[i] = bytes(buffer[offset : offset + length])
        offset += length
    if offset != len(buffer):
        raise InvalidInput(
            f"tensor '{tensor}': raw BYTES buffer has {len(buffer) - offset} bytes "
            f"after the {count} elements its shape holds"
        )
    return out


def _encode_bytes_elements(array: np.ndarray) -> bytes:
    parts = []
    for i, item in enumerate(array.reshape(-1)):
        if isinstance(item, str):
            data = item.encode()
        elif isinstance(item, bytes | bytearray | memoryview):
            data = bytes(item)
        else:  # bytes(5) would silently send five zero bytes
            raise InvalidInput(
                f"BYTES element {i} is a {type(item).__name__}; only str and bytes can be sent"
            )
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def from_raw(buffer: bytes, datatype: str, shape: Iterable[int], name: str) -> np.ndarray:
    """Decode one raw tensor; zero-copy for every numeric datatype."""
    dtype = dtype_of(datatype, name)
    dims = check_shape(shape, name)
    count = math.prod(dims)
    if datatype == "BYTES":
        return _decode_bytes_elements(buffer, count, name).reshape(dims)
    expected = count * dtype.itemsize
    if len(buffer) != expected:
        raise InvalidInput(
            f"tensor '{name}': raw buffer has {len(buffer)} bytes, but shape {list(dims)} "
            f"of {datatype} needs {expected} bytes ({count} elements x {dtype.itemsize})"
        )
    return np.frombuffer(buffer, dtype=dtype).reshape(dims)


def from_contents(
    contents: pb.InferTensorContents, datatype: str, shape: Iterable[int], name: str
) -> np.ndarray:
    """Decode one typed tensor."""
    dtype = dtype_of(datatype, name)
    dims = check_shape(shape, name)
    field = CONTENTS_FIELDS.get(datatype)
    if field is None:
        raise InvalidInput(f"tensor '{name}': {datatype} data must be sent as raw contents")
    values = getattr(contents, field)
    count = math.prod(dims)
    if len(values) != count:
        raise InvalidInput(
            f"tensor '{name}': {field} has {len(values)} elements, "
            f"but shape {list(dims)} needs {count}"
        )
    if datatype == "BYTES":
        array = np.empty(count, dtype=object)
        array[:] = list(values)
        return array.reshape(dims)
    return np.asarray(values, dtype=dtype).reshape(dims)


def decode_request(request: pb.ModelInferRequest) -> dict[str, np.ndarray]:
    """All input tensors of a request, by name."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"request has {len(request.inputs)} inputs but {len(raw)} raw_input_contents; "
            "send one raw buffer per input, in the order of the inputs"
        )
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        if tensor.name in arrays:
            raise InvalidInput(f"input '{tensor.name}' appears more than once")
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInput(
                    f"input '{tensor.name}' has typed contents and raw_input_contents; send one"
                )
            arrays[tensor.name] = from_raw(raw[i], tensor.datatype, tensor.shape, tensor.name)
        else:
            arrays[tensor.name] = from_contents(
                tensor.contents, tensor.datatype, tensor.shape, tensor.name
            )
    return arrays


def to_raw(array: np.ndarray) -> bytes:
    """One tensor's raw buffer (little-endian, row-major)."""
    if array.dtype.kind in "OSU":
        return _encode_bytes_elements(array)
    datatype = datatype_of(array.dtype)
    return np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes()


def add_raw_outputs(response: pb.ModelInferResponse, outputs: Mapping[str, np.ndarray]) -> None:
    """Append ``outputs`` to a response as raw contents."""
    for name, array in outputs.items():
        tensor = response.outputs.add()
        tensor.name = name
        tensor.datatype = datatype_of(array.dtype)
        tensor.shape.extend(array.shape)
        response.raw_output_contents.append(to_raw(array))


def add_raw_inputs(request: pb.ModelInferRequest, inputs: Mapping[str, np.ndarray]) -> None:
    """Append ``inputs`` to a request as raw contents (what a client sends)."""
    for name, array in inputs.items():
        tensor = request.inputs.add()
        tensor.name = name
        tensor.datatype = datatype_of(array.dtype)
        tensor.shape.extend(array.shape)
        request.raw_input_contents.append(to_raw(array))


def decode_response(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """All output tensors of a response, by name (raw or typed)."""
    raw = response.raw_output_contents
    out: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(response.outputs):
        if raw:
            out[tensor.name] = from_raw(raw[i], tensor.datatype, tensor.shape, tensor.name)
        else:
            out[tensor.name] = from_contents(
                tensor.contents, tensor.datatype, tensor.shape, tensor.name
            )
    return out
