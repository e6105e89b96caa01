"""Where a model lives, and getting it onto local disk.

``parse_uri`` turns a ``modelUri`` into one typed location; ``fetch`` copies a
remote one (http, https, s3) to a local file. The operator's init container
(``clipper model fetch``) and local mode (``clipper run``) share this code, so a
URI means the same thing on a laptop and in a cluster.
"""

from __future__ import annotations

from clipper.common.storage.fetching import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_S, fetch
from clipper.common.storage.locations import (
    HttpUri,
    ImageUri,
    LocalPath,
    Location,
    PvcUri,
    S3Uri,
    parse_uri,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_S",
    "HttpUri",
    "ImageUri",
    "LocalPath",
    "Location",
    "PvcUri",
    "S3Uri",
    "fetch",
    "parse_uri",
]
