"""The one widening rule: lossless conversions are made, every other one refused."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.protocol.tensors import DTYPES, widened, widens

LOSSLESS = [
    ("FP32", "FP64"),
    ("FP16", "FP32"),
    ("FP16", "FP64"),
    ("INT8", "FP16"),
    ("INT16", "FP32"),
    ("INT32", "FP64"),
    ("UINT8", "INT16"),
    ("UINT32", "INT64"),
    ("INT8", "INT64"),
    ("UINT8", "UINT64"),
]

LOSSY = [
    ("FP64", "FP32"),  # rounds
    ("INT64", "FP64"),  # integers beyond 2**53 round
    ("INT32", "FP32"),  # beyond 2**24
    ("FP32", "INT64"),  # drops fractions
    ("INT8", "UINT8"),  # negatives
    ("UINT64", "INT64"),  # beyond 2**63
    ("INT16", "INT8"),
    ("BOOL", "INT32"),  # lossless for numpy, refused by decision
    ("BOOL", "FP64"),
    ("INT32", "BOOL"),
    ("BYTES", "FP64"),
    ("FP64", "BYTES"),
    ("INT8", "BYTES"),
]


@pytest.mark.parametrize(("source", "target"), LOSSLESS)
def test_lossless_conversions_widen_and_keep_every_value(source: str, target: str) -> None:
    assert widens(source, target)
    dtype = DTYPES[source]
    info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
    array = np.array([[info.min, 0, info.max]], dtype=dtype)
    converted = widened(array, target)
    assert converted is not None
    assert converted.dtype == DTYPES[target]
    np.testing.assert_array_equal(converted.astype(dtype), array)  # the round trip is exact


@pytest.mark.parametrize(("source", "target"), LOSSY)
def test_lossy_conversions_are_refused(source: str, target: str) -> None:
    assert not widens(source, target)
    array = np.zeros((1, 2), dtype=DTYPES[source])
    assert widened(array, target) is None


def test_the_refused_ones_really_lose_values() -> None:
    big = np.array([2**53 + 1], dtype=np.int64)
    assert int(big.astype(np.float64)[0]) != 2**53 + 1
    precise = np.array([0.1], dtype=np.float64)
    assert precise.astype(np.float32).astype(np.float64)[0] != 0.1


def test_every_datatype_widens_to_itself_without_a_copy() -> None:
    for datatype, dtype in DTYPES.items():
        assert widens(datatype, datatype)
        array = np.zeros(3, dtype=dtype)
        assert widened(array, datatype) is array


def test_every_pair_the_rule_allows_round_trips_its_extremes_exactly() -> None:
    numeric = [name for name in DTYPES if name not in ("BOOL", "BYTES")]
    for source in numeric:
        dtype = DTYPES[source]
        info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
        extremes = np.array([info.min, info.max], dtype=dtype)
        for target in numeric:
            converted = widened(extremes, target)
            if converted is not None:
                back = converted.astype(dtype)
                np.testing.assert_array_equal(back, extremes, err_msg=f"{source}->{target}")
