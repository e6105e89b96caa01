"""The per-version counters' bound: entries past ``max_entries`` drop the oldest.

A dropped entry that comes back counts from zero, which a controller reads as a
reset (``clipper.common.rollout.analysis``); the bound and the count are in the
document and in ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from clipper.frontend.version_stats import VersionStats, VersionStatsCollector
from clipper.testing.frontend import metric


def test_past_the_bound_the_oldest_entry_is_dropped_and_the_bound_is_exported() -> None:
    stats = VersionStats(max_entries=2)
    stats.counters("a", "m", "v1").requests = 5
    stats.counters("a", "m", "v2").requests = 3
    stats.counters("a", "m", "v3").requests = 1
    doc = stats.snapshot()
    assert [e["version"] for e in doc["versions"]] == ["v2", "v3"]
    assert (doc["entries"], doc["max_entries"], stats.evictions) == (2, 2, 1)
    assert stats.counters("a", "m", "v1").requests == 0  # back, from zero
    registry = CollectorRegistry()
    registry.register(VersionStatsCollector(stats))
    text = generate_latest(registry).decode()
    assert metric(text, "clipper_frontend_version_stats_max_entries") == 2
    assert metric(text, "clipper_frontend_version_stats_entries") == 2
    assert metric(text, "clipper_frontend_version_requests_total", version="v3") == 1


def test_latency_lands_in_the_fixed_buckets_and_losses_add_up() -> None:
    stats = VersionStats()
    counters = stats.counters("a", "m", "v1")
    counters.observe(0.0005)  # 0.5 ms: the first bucket (<= 1 ms)
    counters.observe(0.25)  # 250 ms: the bucket (200, 300]
    counters.observe(60.0)  # beyond the last bound: the overflow bucket
    counters.loss(1.0)
    counters.loss(0.0)
    entry = stats.snapshot()["versions"][0]
    buckets = entry["latency_buckets"]
    bounds = stats.snapshot()["latency_buckets_ms"]
    assert buckets[0] == 1
    assert buckets[bounds.index(300)] == 1
    assert buckets[-1] == 1
    assert sum(buckets) == 3
    assert (entry["labels"], entry["loss_sum"], entry["loss_squares"]) == (2, 1.0, 1.0)
