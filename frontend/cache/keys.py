"""Cache keys: which model version, and a digest of exactly what it was asked.

A key is the model, its version and a 128-bit BLAKE2b digest of the row's
dtype, shape and bytes. The dtype and shape are hashed too, because the same
bytes mean different inputs as float32[16] and float64[8] or as [2, 8] and [4, 4].
The digest is computed over the row's own buffer (made contiguous first, so a
row sliced out of a batch hashes like the same values built afresh); BLAKE2b is
fast (~1 GB/s) and collision-resistant, so equal digests mean equal inputs in
practice even when clients choose them adversarially. Text (BYTES) rows are
numpy object arrays whose buffer holds pointers, so each element is hashed by
value, length-prefixed so that ``["ab", "c"]`` and ``["a", "bc"]`` differ.

Model and version stay separate fields (not ``"name@version"`` pasted into one
string) so that a name containing ``@`` can never collide with another version,
and so that ``discard`` can drop one model's entries.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import NamedTuple

import numpy as np

DIGEST_SIZE = 16


class CacheKey(NamedTuple):
    model: str
    version: str
    digest: bytes

    def __str__(self) -> str:
        return f"{self.model}@{self.version}/{self.digest.hex()}"


def cache_key(model: str, version: str, row: np.ndarray) -> CacheKey:
    """The key for ``model@version`` evaluated on ``row`` (one query's input)."""
    row = np.asarray(row)
    h = blake2b(f"{row.dtype.str}{row.shape}".encode(), digest_size=DIGEST_SIZE)
    if row.dtype.kind == "O":
        _hash_objects(h, row)
    else:
        h.update(np.ascontiguousarray(row).data)
    return CacheKey(model, version, h.digest())


def _hash_objects(h: blake2b, row: np.ndarray) -> None:
    for item in row.flat:
        if isinstance(item, str):
            data, tag = item.encode(), b"s"
        elif isinstance(item, bytes | bytearray | memoryview):
            data, tag = bytes(item), b"b"
        else:
            raise TypeError(
                f"cannot build a cache key for a {type(item).__name__} element; "
                "object rows must hold str or bytes"
            )
        h.update(tag + len(data).to_bytes(8, "little"))
        h.update(data)
