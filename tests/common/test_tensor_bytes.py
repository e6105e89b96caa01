"""BYTES tensors carry str and bytes elements, and refuse anything else."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import InvalidInput
from clipper.common.protocol.tensors import from_raw, to_raw


def test_str_and_bytes_elements_round_trip_as_bytes() -> None:
    array = np.array(["héllo", b"\x00raw", ""], dtype=object)
    decoded = from_raw(to_raw(array), "BYTES", [3], "t")
    assert decoded.tolist() == ["héllo".encode(), b"\x00raw", b""]


def test_a_number_in_a_bytes_tensor_is_refused_not_sent_as_zero_bytes() -> None:
    with pytest.raises(InvalidInput, match="BYTES element 1 is a int"):
        to_raw(np.array([b"a", 5], dtype=object))
