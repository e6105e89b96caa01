"""Python-callable test models: ``--framework python --uri clipper.testing.functions:NAME``.

Each follows the python adapter's contract (``clipper.model_wrappers.adapters.
python_function``): one input arrives as an array, several as a dict; the
answer is an array, a list or a dict, with one row per input row.
"""

from __future__ import annotations

import os
import time

import numpy as np

from clipper.common.errors import InvalidInput
from clipper.testing.timeouts import scaled


def identity(batch: np.ndarray) -> np.ndarray:
    """Answers every row with itself."""
    return batch


async def async_identity(batch: np.ndarray) -> np.ndarray:
    """``identity`` as a coroutine function (awaited on the server's event loop)."""
    return batch


def add(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Two inputs, ``a`` and ``b``, in; their sum out."""
    return inputs["a"] + inputs["b"]


def sum_and_label(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Two inputs, ``a`` (FP rows) and ``b`` (a per-row scale), in; two outputs out:
    ``total`` (FP64, each row of ``a`` summed and times ``b``) and ``sign`` (BYTES,
    ``"pos"``/``"neg"``/``"zero"`` of the total). A missing input is the client's
    error (``InvalidInput``, a 400), as a model that checks its inputs should say."""
    if not isinstance(inputs, dict):  # one input came: the adapter passes it bare
        raise InvalidInput("missing an input: takes two, 'a' and 'b'")
    missing = [name for name in ("a", "b") if name not in inputs]
    if missing:
        raise InvalidInput(f"missing input {', '.join(map(repr, missing))}: takes 'a' and 'b'")
    a = np.asarray(inputs["a"], dtype=np.float64).reshape(len(inputs["a"]), -1)
    b = np.asarray(inputs["b"], dtype=np.float64).reshape(len(inputs["b"]), -1)[:, 0]
    total = a.sum(axis=1) * b
    sign = np.array(["pos" if t > 0 else "neg" if t < 0 else "zero" for t in total], dtype=object)
    return {"total": total, "sign": sign}


def row_labels(batch: np.ndarray) -> list[str]:
    """A string per row (a BYTES output): ``"sum=<row sum>"``."""
    return [f"sum={row.sum():g}" for row in batch.reshape(len(batch), -1)]


def fail_on_negative(batch: np.ndarray) -> np.ndarray:
    """Identity, but raises ``ValueError`` on any negative value: a model that fails."""
    if (batch < 0).any():
        raise ValueError("negative pixel values are not images")
    return batch


def drop_last_row(batch: np.ndarray) -> np.ndarray:
    """A broken model: answers one row too few."""
    return batch[:-1]


def slow_identity(batch: np.ndarray) -> np.ndarray:
    """Identity after ``CLIPPER_TESTING_DELAY_S`` seconds (default 0.5): requests in flight."""
    time.sleep(float(os.environ.get("CLIPPER_TESTING_DELAY_S", "0.5")))
    return batch


def batch_similarity(batch: np.ndarray) -> np.ndarray:
    """A model whose output depends on its batch: each row's dot product with every
    row of the batch, so a batch of n rows answers n columns. Rows of one request
    split across two batches come back with different widths and cannot be put
    together again (a real way for delivery to fail in the frontend)."""
    flat = batch.reshape(len(batch), -1).astype(np.float64)
    return flat @ flat.T


def gated_identity(batch: np.ndarray) -> np.ndarray:
    """Identity once the file ``CLIPPER_TESTING_GATE`` exists: batches held in the
    model for as long as a test needs, with no timing involved."""
    gate = os.environ["CLIPPER_TESTING_GATE"]
    deadline = time.monotonic() + scaled(120)  # never hold a worker forever
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return batch


def device_labels(batch: np.ndarray) -> list[str]:
    """Each row labelled with the device the model server chose (``CLIPPER_DEVICE``)."""
    return [os.environ.get("CLIPPER_DEVICE", "unset")] * len(batch)
