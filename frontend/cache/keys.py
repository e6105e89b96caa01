"""Cache keys: which model version, and exactly what it was asked.

A key is the model, its version, the row's kind (its dtype and shape, as text)
and the row's identity: for a row of up to ``RAW_MAX_BYTES`` (a tabular row: 64
float64 features), its bytes themselves; for a larger row, a 128-bit SHA-256
digest of them. The kind is part of the key, because the same bytes mean
different inputs as float32[16] and float64[8] or as [2, 8] and [4, 4]; it is a
field of its own rather than hashed in. The per-request path packs a key into
one ``bytes`` object (``RowKey``), which the garbage collector never tracks,
unlike a tuple. The identity covers the row's own values (made contiguous
first, so a row sliced out of a batch keys like the same values built afresh).
Text (BYTES) rows are numpy object arrays whose buffer holds pointers, so each
element is hashed by value, length-prefixed so that ``["ab", "c"]`` and
``["a", "bc"]`` differ. A row of a model with several inputs is a record
(``clipper.frontend.records``): its kind names each field, its dtype and shape,
and the identity covers every field's bytes (field by field, and always a
digest, when one is text).

Why a small row is its own key: clients choose the inputs, so a key must never
let one client's row be taken for another's (with a fast non-cryptographic
digest, xxHash, a client could craft a colliding input and have its prediction
served to someone else). A SHA-256 per row was the safe answer, but it cost
over half the cache's per-row work, on every miss (5.3% of the cache-on
frontend's samples under ``benchmarks/overload.py``). A ``bytes`` key gets the
same safety for less: dicts and sets find candidates by Python's hash of the
bytes (SipHash, keyed per process, so a client cannot aim at a slot; computed
once and kept by the object) and confirm a candidate by comparing the whole
key, so two rows whose hashes collide are still two keys. A miss then costs a
copy of the row's bytes and that hash, about a third of the digest path for a
request of 16 digits rows. The price is memory: the cache counts each key's
length in its byte bound (``clipper.frontend.cache.lru``), so a 512-byte row
at most about doubles an entry of a class label; past ``RAW_MAX_BYTES`` a
digest keeps the entry small, and there the hash is a small share of what a
large row costs anyway. The kind fixes the row's width, so every row of one
kind is keyed the same way; it is length-prefixed, so a kind and a row's bytes
cannot run into each other.

SHA-256 (truncated to 128 bits) rather than BLAKE2b for large rows because x86
servers have SHA instructions (Intel since Ice Lake, AMD since Zen): on this
project's machine it hashes large rows about twice as fast
(``benchmarks/cache_and_selection_ops.py`` prints both). The kind is formatted
once per (dtype, shape) and remembered: formatting it costs more than hashing
a small row.

Model and version stay separate fields (not ``"name@version"`` pasted into one
string) so that a name containing ``@`` can never collide with another version,
and so that ``discard`` can drop one model's entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from hashlib import sha256
from operator import itemgetter, methodcaller
from typing import NamedTuple

import numpy as np

DIGEST_SIZE = 16
RAW_MAX_BYTES = 512
"""Rows of up to this many bytes (and no text) are keyed by their bytes, larger
ones by a SHA-256 digest."""
_KINDS: dict[tuple[np.dtype, tuple[int, ...]], bytes] = {}
_PREFIXES: dict[tuple[str, str, bytes], bytes] = {}
_MAX_KINDS = 4096
_COPIED_ROW_BYTES = 4096
_VOIDS: dict[int, np.dtype] = {}
_DIGEST = methodcaller("digest")
_SHORT = itemgetter(slice(0, DIGEST_SIZE))


class CacheKey(NamedTuple):
    model: str
    version: str
    kind: bytes
    """The row's dtype and shape, e.g. ``b"<f8(64,)"``."""
    digest: bytes
    """The row's identity: its bytes (up to ``RAW_MAX_BYTES``), else their digest."""

    def __str__(self) -> str:
        return f"{self.model}@{self.version}/{self.kind.decode()}/{self.digest.hex()}"

    @property
    def packed(self) -> RowKey:
        """The key as the cache stores it (``RowKey``)."""
        return _prefix(self.model, self.version, self.kind) + self.digest


RowKey = bytes
"""A key as the cache stores it: one ``bytes`` object, the length-prefixed model,
version and kind, then the row's identity (last, so the fields cannot run into
each other). Not a tuple because the garbage collector tracks every new
tuple until a collection finds it holds nothing to track, so the cache's keys,
which live long, were walked by young collections and moved into the oldest
generation (see ``clipper.frontend.cache.lru``). A ``bytes`` object is never tracked."""


def owner(key: RowKey) -> tuple[str, str]:
    """The model and version of a packed key."""
    size, _, rest = key.partition(b":")
    model, rest = rest[: int(size)], rest[int(size) :]
    size, _, rest = rest.partition(b":")
    return model.decode(), rest[: int(size)].decode()


def cache_key(model: str, version: str, row: np.ndarray) -> CacheKey:
    """The key for ``model@version`` evaluated on ``row`` (one query's input)."""
    row = np.asarray(row)
    if row.dtype.hasobject:
        h = sha256()
        if row.dtype.names is not None:
            for name in row.dtype.names:  # records with text: field by field, by value
                for chunk in _field_chunks(np.asarray(row[name])):
                    h.update(chunk)
        else:
            for chunk in _text_chunks(row):
                h.update(chunk)
        return CacheKey(model, version, _kind(row), h.digest()[:DIGEST_SIZE])
    data = np.ascontiguousarray(row)
    if data.nbytes <= RAW_MAX_BYTES:
        return CacheKey(model, version, _kind(row), data.tobytes())
    return CacheKey(model, version, _kind(row), sha256(data.data).digest()[:DIGEST_SIZE])


def cache_keys(model: str, version: str, rows: np.ndarray) -> list[RowKey]:
    """The key of each row of ``rows`` (one request's rows for ``model@version``),
    packed (``RowKey``), equal to ``cache_key``'s row by row, with no Python
    bytecode per row. A small row's key is the prefix and its bytes: numpy copies
    each row into one ``bytes`` object (``tolist`` of a void view) and a C loop
    (``map``) prepends the prefix. A larger row's bytes go from ``tolist`` (up to
    ``_COPIED_ROW_BYTES``) or from slices of one byte view (no copy: there the hash
    is the cost) through SHA-256, in C loops from hash to packed key."""
    rows = np.asarray(rows)
    if rows.dtype.hasobject or len(rows) == 0:
        return [cache_key(model, version, row).packed for row in rows]
    rows = np.ascontiguousarray(rows)
    prefix = _prefix(model, version, _kind(rows[0]))
    count = len(rows)
    width = rows.nbytes // count
    if width <= RAW_MAX_BYTES:
        if count == 1:
            return [prefix + rows.tobytes()]
        if width == 0:  # rows without elements: all alike
            return [prefix] * count
        return list(map(prefix.__add__, _blobs(rows, count, width)))
    if width <= _COPIED_ROW_BYTES:
        blobs = _blobs(rows, count, width)
        return list(map(prefix.__add__, map(_SHORT, map(_DIGEST, map(sha256, blobs)))))
    data = rows.reshape(-1).view(np.uint8).data
    return [
        prefix + sha256(data[start : start + width]).digest()[:DIGEST_SIZE]
        for start in range(0, len(data), width)
    ]


def _blobs(rows: np.ndarray, count: int, width: int) -> list[bytes]:
    """Each row of a contiguous array as one ``bytes`` object, copied by numpy."""
    blobs: list[bytes] = rows.reshape(count, -1).view(_void(width)).ravel().tolist()
    return blobs


def _void(width: int) -> np.dtype:
    """The dtype of one row as opaque bytes (``tolist`` gives a ``bytes`` per row)."""
    void = _VOIDS.get(width)
    if void is None:
        if len(_VOIDS) >= _MAX_KINDS:
            _VOIDS.clear()
        void = _VOIDS[width] = np.dtype((np.void, width))
    return void


def _prefix(model: str, version: str, kind: bytes) -> bytes:
    key = (model, version, kind)
    prefix = _PREFIXES.get(key)
    if prefix is None:
        if len(_PREFIXES) >= _MAX_KINDS:
            _PREFIXES.clear()
        name, tag = model.encode(), version.encode()
        prefix = _PREFIXES[key] = b"%d:%s%d:%s%d:%s" % (
            len(name), name, len(tag), tag, len(kind), kind,
        )  # fmt: skip
    return prefix


def _kind(row: np.ndarray) -> bytes:
    key = (row.dtype, row.shape)
    kind = _KINDS.get(key)
    if kind is None:
        if len(_KINDS) >= _MAX_KINDS:  # variable-size inputs: stay bounded
            _KINDS.clear()
        # Records (several inputs): ``str`` names every field, its dtype and shape.
        described = str(row.dtype) if row.dtype.names is not None else row.dtype.str
        kind = _KINDS[key] = f"{described}{row.shape}".encode()
    return kind


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
