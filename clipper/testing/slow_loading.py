"""A python model that takes ``CLIPPER_TESTING_IMPORT_DELAY_S`` seconds to load.

Importing this module sleeps (default 2 s), standing in for a large model
being read from disk, so tests can watch a container while it loads:
``--framework python --uri clipper.testing.slow_loading:identity``.
"""

from __future__ import annotations

import os
import time

import numpy as np

time.sleep(float(os.environ.get("CLIPPER_TESTING_IMPORT_DELAY_S", "2")))


def identity(batch: np.ndarray) -> np.ndarray:
    return batch
