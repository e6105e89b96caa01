"""Several tensors as records: packing, defaults per output, cache keys, batching."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from clipper.common.errors import InvalidInput
from clipper.common.protocol import pb
from clipper.frontend.batching.queue import Chunk
from clipper.frontend.cache.keys import cache_key, cache_keys
from clipper.frontend.cache.lru import LRUCache
from clipper.frontend.oip import check_input_names, declared_row, output_tensors
from clipper.frontend.queries import Answer
from clipper.frontend.records import field, pack, primary, unpack


def two(rows: int = 3) -> np.ndarray:
    a = np.arange(rows * 4, dtype=np.float32).reshape(rows, 4)
    b = np.array([[f"t{i}"] for i in range(rows)], dtype=object)
    return pack({"a": a, "b": b})


def test_records_keep_every_tensor_and_its_row_shape() -> None:
    records = two()
    assert len(records) == 3
    tensors = unpack(records)
    assert list(tensors) == ["a", "b"]
    assert tensors["a"].shape == (3, 4)
    assert tensors["a"].dtype == np.float32
    assert tensors["b"].tolist() == [["t0"], ["t1"], ["t2"]]
    np.testing.assert_array_equal(primary(records[1]), [4, 5, 6, 7])
    assert field(records[2], "b").tolist() == ["t2"]
    with pytest.raises(InvalidInput, match="unknown output 'c'; the app's outputs are 'a', 'b'"):
        field(records[0], "c")


def test_tensors_with_different_batch_sizes_are_refused() -> None:
    with pytest.raises(InvalidInput, match="'b' has 2 rows but the others have 3"):
        pack({"a": np.zeros((3, 1)), "b": np.zeros((2, 1))})
    with pytest.raises(InvalidInput, match="names no inputs"):
        pack({})


def test_a_key_covers_every_input_of_the_row() -> None:
    a = np.ones((2, 4))
    keys = cache_keys("m", "1", pack({"a": a, "b": np.array([[1.0], [2.0]])}))
    assert keys[0] != keys[1]  # only b differs
    renamed = cache_keys("m", "1", pack({"a": a, "c": np.array([[1.0], [2.0]])}))
    assert renamed[0] != keys[0]  # same bytes, another input
    assert cache_keys("m", "1", two())[1] == cache_key("m", "1", two()[1]).packed
    assert cache_keys("m", "1", two())[0] != cache_keys("m", "1", two())[1]


def test_the_cache_stores_every_output_of_a_row() -> None:
    cache = LRUCache(1 << 20)
    keys = [("m", "1", bytes([i]) * 16) for i in range(3)]
    outputs = two()
    cache._fill(keys, outputs)
    found = asyncio.run(cache.lookup(keys))
    assert [field(np.asarray(f), "b").tolist() for f in found] == [["t0"], ["t1"], ["t2"]]
    assert cache.stats.bytes > outputs.nbytes


async def test_a_chunk_of_records_is_delivered_across_batches() -> None:
    future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
    records = two(4)
    chunk = Chunk(records, 1e9, future)
    chunk.deliver(2, records[2:])
    assert not future.done()
    chunk.deliver(0, records[:2])
    assert future.result()["b"].tolist() == records["b"].tolist()


def test_check_input_names_says_what_is_missing_and_unknown() -> None:
    check_input_names(["b", "a"], ["a", "b"])
    check_input_names(["x", "y"], [])  # nothing declared: the model decides
    with pytest.raises(InvalidInput, match="missing input 'b'; unknown input 'c': the app takes"):
        check_input_names(["a", "c"], ["a", "b"])
    with pytest.raises(InvalidInput, match="repeat"):
        check_input_names(["a", "a"], [])


def answer(value: object, default: bool = False) -> Answer:
    return Answer(value, default=default, reason="slo" if default else None, explanation="slo: x")


def test_defaults_fill_every_output_from_a_mapping_or_one_value() -> None:
    predicted = pack({"total": np.array([2.5]), "sign": np.array(["pos"], dtype=object)})[0]
    tensors = output_tensors(
        [answer(predicted), answer({"total": -1, "sign": "n/a"}, default=True)], None, "output"
    )
    assert tensors["total"].tolist() == [2.5, -1.0]
    assert tensors["sign"].tolist() == ["pos", "n/a"]
    same = output_tensors([answer(predicted), answer(0, default=True)], None, "output", ["total"])
    assert list(same) == ["total"]
    assert same["total"].tolist() == [2.5, 0.0]
    with pytest.raises(InvalidInput, match="unknown output 'x'"):
        output_tensors([answer(predicted)], None, "output", ["x"])


def test_declared_outputs_make_a_record_template() -> None:
    specs = [
        pb.ModelMetadataResponse.TensorMetadata(name="p", datatype="FP32", shape=[-1, 2]),
        pb.ModelMetadataResponse.TensorMetadata(name="k", datatype="INT64", shape=[-1]),
    ]
    template = declared_row(specs)
    assert template is not None
    tensors = output_tensors([answer({"p": 0.5, "k": 3}, default=True)], template, "output")
    assert tensors["p"].dtype == np.float32
    assert tensors["p"].tolist() == [[0.5, 0.5]]
    assert tensors["k"].tolist() == [3]
