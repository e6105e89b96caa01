"""Build an app's cache from its ``CacheConfig``."""

from __future__ import annotations

import time
from collections.abc import Callable

from clipper.common.errors import ConfigError
from clipper.common.routing import CacheConfig
from clipper.frontend.cache.base import PredictionCache
from clipper.frontend.cache.lru import LRUCache
from clipper.frontend.cache.null import NullCache


def make_cache(
    config: CacheConfig,
    ttl_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> PredictionCache:
    """An ``LRUCache`` of ``config.max_bytes``; a ``NullCache`` if disabled or 0 bytes."""
    if not config.enabled or config.max_bytes == 0:
        return NullCache()
    if ttl_seconds is not None and not ttl_seconds > 0:
        raise ConfigError(f"must be positive, got {ttl_seconds}", location="cache.ttl_seconds")
    return LRUCache(config.max_bytes, ttl_seconds=ttl_seconds, clock=clock)
