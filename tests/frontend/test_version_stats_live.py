"""Per-version statistics, as a rollout's analysis reads them from a real frontend.

Two versions of one digits model (a good and a poor classifier behind the same
name) share traffic; every query and every label is counted for the version
that answered it, on ``GET /v1/stats/versions`` and in ``/metrics``. A version
slower than the app's SLO shows its slowness in the latency histogram and in
its default answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from clipper.common.rollout.analysis import LATENCY_BUCKETS_MS, report_of
from clipper.testing.frontend import metric, route, serving, write_routes
from clipper.testing.graded_models import start_graded_versions
from clipper.testing.latency import LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits

QUERIES = 120


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ModelServer]]:
    """``digits`` v1 (the good classifier) and v2 (the poor one)."""
    servers = start_graded_versions(tmp_path_factory.mktemp("graded"), {"v1": "good", "v2": "poor"})
    yield servers
    for server in servers:
        server.stop()


async def stats(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(f"{url}/v1/stats/versions") as r:
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        return body


async def test_queries_and_labels_are_counted_for_the_version_that_answered(
    routes: Path, two_versions: list[ModelServer]
) -> None:
    versions = [
        {"version": v, "weight": 50, "replicas": [server.address]}
        for v, server in zip(("v1", "v2"), two_versions, strict=True)
    ]
    write_routes(routes, route("digits", {"digits": versions}, latency_slo_ms=5000))
    pixels, labels = digits()
    async with serving(routes, seed=1) as fe, aiohttp.ClientSession() as http:
        before = await stats(http, fe.url)
        for i in range(QUERIES):
            async with http.post(
                f"{fe.url}/digits/predict", json={"input": pixels[i].tolist()}
            ) as r:
                answer = await r.json()
            assert not answer["default"], answer
            body = {"query_id": answer["query_id"], "label": int(labels[i])}
            async with http.post(f"{fe.url}/digits/feedback", json=body) as r:
                assert r.status == 200, await r.text()
        after = await stats(http, fe.url)
        text = fe.metrics()
    assert before["versions"] == []
    assert after["instance"] == before["instance"]
    assert after["started_at"] > 0
    assert after["latency_buckets_ms"] == list(LATENCY_BUCKETS_MS)
    report = report_of(after, "digits")
    good, poor = report.versions["v1"], report.versions["v2"]
    assert good.requests + poor.requests == QUERIES
    assert min(good.requests, poor.requests) > QUERIES // 4  # both got a share
    assert (good.labels, poor.labels) == (good.requests, poor.requests)
    assert sum(good.latency) == good.requests
    assert good.errors == 0
    assert good.mean_loss() is not None
    assert poor.mean_loss() is not None
    assert good.mean_loss() < 0.2 < 0.6 < poor.mean_loss()  # type: ignore[operator]
    assert report.slo_ms == 5000
    labelled = ("digits", "digits", "v2")
    assert metric(text, "clipper_frontend_version_requests_total", version="v2") == poor.requests
    assert metric(text, "clipper_frontend_version_labels_total", version="v2") == poor.labels
    assert labelled in {(e["app"], e["model"], e["version"]) for e in after["versions"]}


async def test_a_version_slower_than_the_slo_shows_it_in_latency_and_defaults(
    routes: Path, echo_server: ModelServer, latency: LatencyControl
) -> None:
    write_routes(routes, route("echo", {"echo": [echo_server.address]}, latency_slo_ms=50))
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        latency.set(0.3)
        for _ in range(4):
            async with http.post(f"{fe.url}/echo/predict", json={"input": [1.0] * 4}) as r:
                assert (await r.json())["default"] is True
        report = report_of(await stats(http, fe.url), "echo")
    slow = report.versions["1"]
    assert slow.requests == 4
    assert slow.defaults == {"slo": 4}
    assert slow.errors == 0
    p99 = slow.quantile_ms(0.99)
    assert p99 is not None
    assert p99 > 50
