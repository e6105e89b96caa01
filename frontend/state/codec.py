"""A remembered query as bytes for the shared query log, and back.

JSON with each output array's dtype, shape and base64 data: no pickle, so a
frontend never runs code from what another wrote into Redis. BYTES outputs
(numpy object arrays of ``bytes``) are lists of base64 strings.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from clipper.frontend.feedback import Remembered
from clipper.frontend.selection import Selection


def encode(
    context: str,
    selection: Selection,
    outputs: Mapping[str, np.ndarray],
    versions: Mapping[str, str] | None = None,
) -> bytes:
    return orjson.dumps(
        {
            "c": context,
            "m": list(selection.models),
            "w": dict(selection.weights),
            "o": {model: _array(np.asarray(out)) for model, out in outputs.items()},
            "v": dict(versions or {}),
        }
    )


def decode(payload: bytes) -> Remembered:
    doc = orjson.loads(payload)
    outputs = {model: _from(spec) for model, spec in doc["o"].items()}
    selection = Selection(tuple(doc["m"]), {k: float(v) for k, v in doc["w"].items()})
    versions = {str(k): str(v) for k, v in doc.get("v", {}).items()}
    return Remembered(doc["c"], selection, outputs, len(payload), versions)


def _array(out: np.ndarray) -> dict[str, Any]:
    if out.dtype.kind == "O":
        items = [base64.b64encode(bytes(v)).decode() for v in out.flat]
        return {"t": "O", "s": list(out.shape), "d": items}
    data = base64.b64encode(np.ascontiguousarray(out).tobytes()).decode()
    return {"t": out.dtype.str, "s": list(out.shape), "d": data}


def _from(spec: dict[str, Any]) -> np.ndarray:
    shape = tuple(spec["s"])
    if spec["t"] == "O":
        flat = np.empty(len(spec["d"]), dtype=object)
        flat[:] = [base64.b64decode(v) for v in spec["d"]]
        return flat.reshape(shape)
    return np.frombuffer(base64.b64decode(spec["d"]), dtype=np.dtype(spec["t"])).reshape(shape)
