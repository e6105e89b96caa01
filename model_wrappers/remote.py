"""A model served straight from an http(s):// or s3:// URI (local mode).

In a cluster an init container fetches the model first and the server gets a
local path. ``clipper run`` has no init containers, so the server fetches it
itself, into a temporary folder that is removed once the model is loaded (every
adapter reads its file completely while loading): nothing accumulates on the
laptop, each start gets the file as the URI serves it now, and a fetch that fails
is a load failure like any other (exit 1, the cause as the last ERROR line), which
local mode's rollout handles as it does a missing file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from clipper.common.storage import HttpUri, S3Uri, fetch, parse_uri
from clipper.model_wrappers.base import Model

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def local_copy(model: Model) -> AsyncIterator[None]:
    """While the block runs, ``model.settings.uri`` names a local copy of a remote model."""
    uri = model.settings.uri
    location = parse_uri(uri) if "://" in uri else None
    if not isinstance(location, HttpUri | S3Uri):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="clipper-model-") as tmp:
        dest = await asyncio.to_thread(fetch, location, Path(tmp) / location.filename)
        log.info("fetched %s (%d bytes)", location.url, dest.stat().st_size)
        model.settings = model.settings.model_copy(update={"uri": str(dest)})
        try:
            yield
        finally:
            model.settings = model.settings.model_copy(update={"uri": uri})
