"""The prediction cache: answers repeated queries without asking the model again.

Keyed by model, version and a digest of the input row (``cache_key``); an LRU
bounded in bytes with an optional TTL (``LRUCache``); identical queries in
flight share one evaluation (``get_or_compute``). ``make_cache`` builds an
app's cache from its ``CacheConfig``; a disabled cache (``NullCache``) evaluates
every request. See docs/selection_and_cache.md.
"""

from clipper.frontend.cache.base import CacheStats, PredictionCache
from clipper.frontend.cache.coalescing import Coalescer
from clipper.frontend.cache.factory import make_cache
from clipper.frontend.cache.keys import CacheKey, cache_key
from clipper.frontend.cache.lru import LRUCache
from clipper.frontend.cache.null import NullCache

__all__ = [
    "CacheKey",
    "CacheStats",
    "Coalescer",
    "LRUCache",
    "NullCache",
    "PredictionCache",
    "cache_key",
    "make_cache",
]
