"""make_cache: an app's CacheConfig decides whether and how much it caches."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import ConfigError
from clipper.common.routing import AppConfig, CacheConfig
from clipper.frontend.cache import LRUCache, NullCache, cache_key, make_cache


def test_default_app_config_gets_an_lru_cache_of_its_size() -> None:
    cache = make_cache(AppConfig(name="digits").cache)
    assert isinstance(cache, LRUCache)
    assert cache.enabled
    assert cache.max_bytes == CacheConfig().max_bytes
    assert cache.ttl_seconds is None


@pytest.mark.parametrize("config", [CacheConfig(enabled=False), CacheConfig(max_bytes=0)])
def test_a_cache_can_be_turned_off(config: CacheConfig) -> None:
    cache = make_cache(config)
    assert isinstance(cache, NullCache)
    assert not cache.enabled


async def test_ttl_and_clock_reach_the_cache() -> None:
    now = [0.0]
    cache = make_cache(CacheConfig(max_bytes=1 << 16), ttl_seconds=1.0, clock=lambda: now[0])
    key = cache_key("m", "1", np.zeros(1))
    await cache.put(key, np.ones(1))
    now[0] = 1.0
    assert await cache.get(key) is None


def test_invalid_ttl_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"cache.ttl_seconds: must be positive"):
        make_cache(CacheConfig(), ttl_seconds=0)
