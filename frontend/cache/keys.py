"""Cache keys: which model version, and a digest of exactly what it was asked.

A key is the model, its version and a 128-bit digest of the row's dtype, shape
and bytes. The dtype and shape are hashed too, because the same bytes mean
different inputs as float32[16] and float64[8] or as [2, 8] and [4, 4]. The
digest covers the row's own values (made contiguous first, so a row sliced out
of a batch hashes like the same values built afresh). Text (BYTES) rows are
numpy object arrays whose buffer holds pointers, so each element is hashed by
value, length-prefixed so that ``["ab", "c"]`` and ``["a", "bc"]`` differ.
A row of a model with several inputs is a record (``clipper.frontend.records``):
its key covers every input, because the header names each field, its dtype and
shape, and the digest covers every field's bytes (field by field when one is text).

The hash is cryptographic because clients choose the inputs: with a fast
non-cryptographic hash (xxHash) a client could craft an input that collides
with someone else's and have its prediction served to them. SHA-256 (truncated
to 128 bits) rather than BLAKE2b because x86 servers have SHA instructions
(Intel since Ice Lake, AMD since Zen): on this project's machine it hashes large
rows about twice as fast (``benchmarks/cache_and_selection_ops.py`` prints
both). The dtype/shape prefix is formatted once per (dtype, shape) and
remembered: formatting it costs more than hashing a small row.

Model and version stay separate fields (not ``"name@version"`` pasted into one
string) so that a name containing ``@`` can never collide with another version,
and so that ``discard`` can drop one model's entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from hashlib import sha256
from typing import NamedTuple

import numpy as np

DIGEST_SIZE = 16
_HEADERS: dict[tuple[np.dtype, tuple[int, ...]], bytes] = {}
_MAX_HEADERS = 4096


class CacheKey(NamedTuple):
    model: str
    version: str
    digest: bytes

    def __str__(self) -> str:
        return f"{self.model}@{self.version}/{self.digest.hex()}"


RowKey = tuple[str, str, bytes]
"""A key as a plain tuple ``(model, version, digest)``: equal to the ``CacheKey``
with the same fields and hashed alike, so either finds the other's entry. The
per-request path uses it because the garbage collector stops tracking a plain
tuple of strings and bytes after one collection, never a NamedTuple (nor one
built with ``tuple.__new__``): a cache of 100,000 entries and the keys of every
row in flight then add nothing to the collector's work."""


def cache_key(model: str, version: str, row: np.ndarray) -> CacheKey:
    """The key for ``model@version`` evaluated on ``row`` (one query's input)."""
    row = np.asarray(row)
    h = sha256(_header(row))
    if row.dtype.names is not None and row.dtype.hasobject:
        for name in row.dtype.names:  # records with text: field by field, by value
            for chunk in _field_chunks(np.asarray(row[name])):
                h.update(chunk)
    elif row.dtype.kind == "O":
        for chunk in _text_chunks(row):
            h.update(chunk)
    else:
        h.update(np.ascontiguousarray(row).data)
    return CacheKey(model, version, h.digest()[:DIGEST_SIZE])


def cache_keys(model: str, version: str, rows: np.ndarray) -> list[RowKey]:
    """The key of each row of ``rows`` (one request's rows for ``model@version``),
    as plain tuples equal to ``cache_key``'s, row by row. The header is hashed once
    and each row's hash continues from a copy of that state, over a slice of one
    byte view of the contiguous rows: no numpy view or ``memoryview`` is built per
    row (that was a sixth of the keys' cost for a digits row)."""
    rows = np.asarray(rows)
    if rows.dtype.hasobject or len(rows) == 0:
        return [tuple(cache_key(model, version, row)) for row in rows]  # type: ignore[misc]
    rows = np.ascontiguousarray(rows)
    copy = sha256(_header(rows[0])).copy
    width = rows.nbytes // len(rows)
    if width == 0:  # rows without elements: all alike
        return [(model, version, copy().digest()[:DIGEST_SIZE])] * len(rows)
    data = rows.reshape(-1).view(np.uint8).data
    keys: list[RowKey] = []
    append = keys.append
    for start in range(0, len(data), width):
        h = copy()
        h.update(data[start : start + width])
        append((model, version, h.digest()[:DIGEST_SIZE]))
    return keys


def _header(row: np.ndarray) -> bytes:
    key = (row.dtype, row.shape)
    header = _HEADERS.get(key)
    if header is None:
        if len(_HEADERS) >= _MAX_HEADERS:  # variable-size inputs: stay bounded
            _HEADERS.clear()
        # Records (several inputs): ``str`` names every field, its dtype and shape.
        described = str(row.dtype) if row.dtype.names is not None else row.dtype.str
        header = _HEADERS[key] = f"{described}{row.shape}|".encode()
    return header


def _field_chunks(part: np.ndarray) -> Iterator[bytes]:
    if part.dtype.kind == "O":
        yield from _text_chunks(part)
    else:
        yield np.ascontiguousarray(part).tobytes()


def _text_chunks(row: np.ndarray) -> Iterator[bytes]:
    """Each element's bytes, tagged (str or bytes) and length-prefixed."""
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
        yield tag + len(data).to_bytes(8, "little")
        yield data
