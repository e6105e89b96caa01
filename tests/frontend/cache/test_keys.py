"""Cache keys: equal inputs share a key, anything that changes the meaning does not."""

from __future__ import annotations

import gc
import hashlib

import numpy as np
import pytest

from clipper.frontend.cache import CacheKey, cache_key, cache_keys
from clipper.frontend.cache.keys import RAW_MAX_BYTES, owner


def test_same_row_from_different_arrays_has_the_same_key() -> None:
    batch = np.arange(64, dtype=np.float64).reshape(4, 16)
    fresh = np.arange(16, 32, dtype=np.float64)
    assert cache_key("m", "1", batch[1]) == cache_key("m", "1", fresh)


def test_non_contiguous_row_hashes_by_value() -> None:
    grid = np.arange(64, dtype=np.float32).reshape(8, 8)
    column = grid[:, 3]
    assert not column.flags.c_contiguous
    assert cache_key("m", "1", column) == cache_key("m", "1", column.copy())


def test_same_bytes_with_other_dtype_or_shape_differ() -> None:
    row = np.arange(8, dtype=np.float64)
    as_int = row.view(np.int64)
    assert row.tobytes() == as_int.tobytes()
    keys = {
        cache_key("m", "1", row),
        cache_key("m", "1", as_int),
        cache_key("m", "1", row.reshape(2, 4)),
        cache_key("m", "1", row.reshape(4, 2)),
        cache_key("m", "1", row.view(np.float32)),
    }
    assert len(keys) == 5


def test_one_changed_value_changes_the_key() -> None:
    row = np.zeros(64)
    other = row.copy()
    other[63] = 1e-300
    assert cache_key("m", "1", row) != cache_key("m", "1", other)


def test_model_and_version_are_part_of_the_key() -> None:
    row = np.ones(3)
    keys = {cache_key("m", "1", row), cache_key("m", "2", row), cache_key("n", "1", row)}
    assert len(keys) == 3
    # A name containing "@" cannot collide with another model's version.
    assert cache_key("a@b", "c", row) != cache_key("a", "b@c", row)


def test_text_rows_hash_by_value_not_by_pointer() -> None:
    a = np.array([b"hello", b"world"], dtype=object)
    b = np.array([bytes(bytearray(b"hello")), b"wor" + b"ld"], dtype=object)
    assert a[0] is not b[0]
    assert cache_key("m", "1", a) == cache_key("m", "1", b)
    split = np.array([b"hellow", b"orld"], dtype=object)
    assert cache_key("m", "1", a) != cache_key("m", "1", split)
    assert cache_key("m", "1", np.array(["x"], dtype=object)) != cache_key(
        "m", "1", np.array([b"x"], dtype=object)
    )


def test_unhashable_object_elements_are_refused() -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        cache_key("m", "1", np.array([{"a": 1}], dtype=object))


def test_key_is_printable_and_small_for_a_large_row() -> None:
    key = cache_key("digits", "v3", np.zeros(4))
    assert isinstance(key, CacheKey)
    assert str(key).startswith("digits@v3/")
    assert hash(key) == hash(cache_key("digits", "v3", np.zeros(4)))
    assert len(cache_key("digits", "v3", np.zeros(RAW_MAX_BYTES // 8 + 1)).digest) == 16


def test_a_small_row_is_keyed_by_its_bytes_a_large_one_by_a_digest() -> None:
    """A miss on a small row pays no SHA-256: its key is its bytes, which dicts
    confirm whole after Python's keyed hash finds a candidate."""
    small = np.arange(RAW_MAX_BYTES // 8, dtype=np.float64)
    large = np.arange(RAW_MAX_BYTES // 8 + 1, dtype=np.float64)
    assert cache_key("m", "1", small).digest == small.tobytes()
    assert cache_key("m", "1", large).digest == hashlib.sha256(large.tobytes()).digest()[:16]
    keys = cache_keys("m", "1", np.stack([small, small + 1]))
    assert [key[-small.nbytes :] for key in keys] == [small.tobytes(), (small + 1).tobytes()]


def test_a_requests_keys_in_one_pass_equal_the_keys_row_by_row() -> None:
    wide = np.arange(48, dtype=np.float32).reshape(4, 12)
    text = np.array([["ab", "c"], ["a", "bc"]], dtype=object)
    digested = np.arange(4 * 200, dtype=np.float32).reshape(4, 200)  # over RAW_MAX_BYTES
    sliced = np.arange(4 * 2000, dtype=np.float32).reshape(4, 2000)  # over _COPIED_ROW_BYTES
    for rows in (wide, wide[:, ::2], wide[::2], wide[:1], text, digested, sliced, sliced[:1]):
        assert cache_keys("m", "1", rows) == [cache_key("m", "1", row).packed for row in rows]


def test_the_kind_is_a_field_of_its_own_and_keys_are_packed_bytes() -> None:
    """dtype and shape are compared as they are, not hashed in with the row, so
    each row costs one hash of its own bytes; a request's keys are ``bytes``, which
    the garbage collector never tracks (a tuple it tracks until a collection)."""
    rows = np.arange(8.0).reshape(2, 4)
    first = cache_key("m", "1", rows[0])
    assert first.kind == b"<f8(4,)"
    assert first.digest == rows[0].tobytes()
    as_ints = cache_key("m", "1", rows[0].view(np.int64))
    assert as_ints.digest == first.digest
    assert as_ints.packed != first.packed  # same bytes, another kind
    keys = cache_keys("m", "1", rows)
    assert keys[0] == first.packed
    assert all(type(key) is bytes for key in keys)
    assert not any(gc.is_tracked(key) for key in keys)
    assert owner(cache_key("a:b", "2@x", rows[0]).packed) == ("a:b", "2@x")


def test_model_and_version_cannot_run_into_each_other() -> None:
    row = np.zeros(2)
    assert cache_key("ab", "c", row).packed != cache_key("a", "bc", row).packed
    assert cache_key("1", "1:x", row).packed != cache_key("1:1", "x", row).packed


def test_a_kind_and_a_rows_bytes_cannot_run_into_each_other() -> None:
    """The row's bytes have no fixed length, so the kind before them is length-prefixed."""
    key = cache_key("m", "1", np.zeros(2)).packed
    assert key.startswith(b"1:m1:1%d:<f8(2,)" % len(b"<f8(2,)"))


def test_rows_without_elements_have_one_key() -> None:
    empty = np.zeros((3, 0))
    assert cache_keys("m", "1", empty) == [cache_key("m", "1", empty[0]).packed] * 3
