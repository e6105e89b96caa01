"""The prediction cache: answers repeated queries without asking the model again.

Keyed by model, version and a digest of the input row (``cache_key``); an LRU
bounded in bytes with an optional TTL (``LRUCache``); a request's rows are
looked up in one pass (``lookup``), its misses for a version go to the queue as
one chunk, and identical rows in flight join that chunk (``Flights``). ``make_cache`` builds an
app's cache from its ``CacheConfig``; a disabled cache (``NullCache``) evaluates
every request. See docs/selection_and_cache.md.
"""

from clipper.frontend.cache.base import CacheStats, PredictionCache
from clipper.frontend.cache.factory import make_cache
from clipper.frontend.cache.flights import Flight, Flights
from clipper.frontend.cache.keys import CacheKey, RowKey, cache_key, cache_keys
from clipper.frontend.cache.lru import LRUCache
from clipper.frontend.cache.null import NullCache

__all__ = [
    "CacheKey",
    "CacheStats",
    "Flight",
    "Flights",
    "LRUCache",
    "NullCache",
    "PredictionCache",
    "RowKey",
    "cache_key",
    "cache_keys",
    "make_cache",
]
