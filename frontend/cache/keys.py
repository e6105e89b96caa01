"""Cache keys: which model version, and exactly what it was asked.

A key is the model, its version, the row's kind (its dtype and shape, as text)
and a 128-bit digest of the row's bytes. The kind is part of the key, because
the same bytes mean different inputs as float32[16] and float64[8] or as [2, 8]
and [4, 4]; it is a field of its own rather than hashed in, so that each row
costs one hash call (continuing a copied hash state per row cost as much again).
The per-request path packs a key into one ``bytes`` object (``RowKey``), which
the garbage collector never tracks, unlike a tuple. The digest covers the row's own
values (made contiguous first, so a row sliced out of a batch hashes like the
same values built afresh). Text (BYTES) rows are numpy object arrays whose
buffer holds pointers, so each element is hashed by value, length-prefixed so
that ``["ab", "c"]`` and ``["a", "bc"]`` differ. A row of a model with several
inputs is a record (``clipper.frontend.records``): its kind names each field,
its dtype and shape, and the digest covers every field's bytes (field by field
when one is text).

The hash is cryptographic because clients choose the inputs: with a fast
non-cryptographic hash (xxHash) a client could craft an input that collides
with someone else's and have its prediction served to them. SHA-256 (truncated
to 128 bits) rather than BLAKE2b because x86 servers have SHA instructions
(Intel since Ice Lake, AMD since Zen): on this project's machine it hashes large
rows about twice as fast (``benchmarks/cache_and_selection_ops.py`` prints
both). The kind is formatted once per (dtype, shape) and remembered: formatting
it costs more than hashing a small row.

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

    def __str__(self) -> str:
        return f"{self.model}@{self.version}/{self.kind.decode()}/{self.digest.hex()}"

    @property
    def packed(self) -> RowKey:
        """The key as the cache stores it (``RowKey``)."""
        return _prefix(self.model, self.version, self.kind) + self.digest


RowKey = bytes
"""A key as the cache stores it: one ``bytes`` object, the length-prefixed model
and version, the kind, then the digest (fixed length, last, so the fields cannot
run into each other). Not a tuple because the garbage collector tracks every new
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
    h = sha256()
    if row.dtype.names is not None and row.dtype.hasobject:
        for name in row.dtype.names:  # records with text: field by field, by value
            for chunk in _field_chunks(np.asarray(row[name])):
                h.update(chunk)
    elif row.dtype.kind == "O":
        for chunk in _text_chunks(row):
            h.update(chunk)
    else:
        h.update(np.ascontiguousarray(row).data)
    return CacheKey(model, version, _kind(row), h.digest()[:DIGEST_SIZE])


def cache_keys(model: str, version: str, rows: np.ndarray) -> list[RowKey]:
    """The key of each row of ``rows`` (one request's rows for ``model@version``),
    packed (``RowKey``), equal to ``cache_key``'s row by row: one hash call per row
    and no Python bytecode per row. Rows up to ``_COPIED_ROW_BYTES`` are copied into
    one ``bytes`` object each by numpy (``tolist`` of a void view) and go through C
    loops (``map``) from hash to packed key: a slice of a ``memoryview`` per row
    cost as much again as the copy (acquiring the buffer), and a comprehension's
    bytecode per row more. Larger rows are hashed from slices of one byte view,
    without a copy: there the hash itself is the cost."""
    rows = np.asarray(rows)
    if rows.dtype.hasobject or len(rows) == 0:
        return [cache_key(model, version, row).packed for row in rows]
    rows = np.ascontiguousarray(rows)
    prefix = _prefix(model, version, _kind(rows[0]))
    count = len(rows)
    width = rows.nbytes // count
    if width == 0:  # rows without elements: all alike
        return [prefix + sha256().digest()[:DIGEST_SIZE]] * count
    if count == 1:
        return [prefix + sha256(rows.data).digest()[:DIGEST_SIZE]]
    if width <= _COPIED_ROW_BYTES:
        blobs = rows.reshape(count, -1).view(_void(width)).ravel().tolist()
        return list(map(prefix.__add__, map(_SHORT, map(_DIGEST, map(sha256, blobs)))))
    data = rows.reshape(-1).view(np.uint8).data
    return [
        prefix + sha256(data[start : start + width]).digest()[:DIGEST_SIZE]
        for start in range(0, len(data), width)
    ]


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
        prefix = _PREFIXES[key] = b"%d:%s%d:%s%s" % (len(name), name, len(tag), tag, kind)
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
