"""Workers seeing each other: readiness over every worker, one scrape for all.

A real in-process frontend as worker 0 and a real control socket standing in
for worker 1 (the process tests in ``tests/frontend/test_workers.py`` run both
as ``clipper frontend`` processes).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from pydantic import ValidationError

from clipper.frontend.settings import FrontendSettings
from clipper.frontend.workers.control import ControlServer
from clipper.frontend.workers.merge import merge_expositions
from clipper.testing.frontend import metric, serving, write_routes


async def get_readyz(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as answer:
        return answer.status, await answer.json()


async def test_ready_once_every_worker_started_and_a_restarting_one_is_left_out(
    tmp_path: Path,
) -> None:
    routes = write_routes(tmp_path / "routes.yaml")
    group = secrets.token_hex(4)
    ready = {"ready": True}
    sibling = ControlServer(group, 1, lambda: b"", lambda: ready)
    async with serving(routes, ready=False, workers=2, worker=0, worker_group=group) as one:
        starting = {"ready": False, "starting": True}
        assert await get_readyz(one.url) == (
            503,
            {"ready": False, "workers": {"0": {"ready": True}, "1": starting}},
        )
        await sibling.start()
        both = {"0": {"ready": True}, "1": {"ready": True}}
        assert await get_readyz(one.url) == (200, {"ready": True, "workers": both})
        ready = {"ready": False, "failed_tasks": {"batcher": "boom"}}
        status, body = await get_readyz(one.url)
        assert (status, body["workers"]["1"]) == (503, ready)
        await sibling.stop()  # worker 1 restarting: it takes no connections meanwhile
        assert await get_readyz(one.url) == (
            200,
            {"ready": True, "workers": {"0": {"ready": True}}},
        )


async def test_a_scrape_carries_every_workers_series_labelled(tmp_path: Path) -> None:
    routes = write_routes(tmp_path / "routes.yaml")
    group = secrets.token_hex(4)
    registry = CollectorRegistry()
    Counter("clipper_frontend_feedback", "labels", ["app"], registry=registry).labels("a").inc(7)
    sibling = ControlServer(group, 1, lambda: generate_latest(registry), lambda: {"ready": True})
    await sibling.start()
    try:
        settings = {"workers": 2, "worker": 0, "worker_group": group}
        async with (
            serving(routes, ready=False, **settings) as one,
            aiohttp.ClientSession() as session,
            session.get(f"{one.url}/metrics") as answer,
        ):
            text = await answer.text()
    finally:
        await sibling.stop()
    assert metric(text, "clipper_frontend_feedback_total", worker="1", app="a") == 7
    assert metric(text, "clipper_frontend_inflight_rows_bound", worker="0") == 2048
    assert metric(text, "clipper_frontend_inflight_rows_bound", worker="1") == 0
    assert text.count("# TYPE clipper_frontend_inflight_rows_bound ") == 1


def test_merge_leaves_out_a_reply_cut_short_and_keeps_the_others() -> None:
    registry = CollectorRegistry()
    Counter("requests", "requests", registry=registry).inc(3)
    whole = generate_latest(registry)
    merged = merge_expositions({0: whole, 1: b'requests_total{a="unterminated'}).decode()
    assert metric(merged, "requests_total", worker="0") == 3
    assert 'worker="1"' not in merged


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"workers": 0}, "greater than or equal to 1"),
        ({"workers": 65}, "less than or equal to 64"),
        ({"worker": 0}, "--worker is set by the supervisor of --workers"),
        ({"workers": 2, "worker": 2, "worker_group": "ab"}, "below --workers"),
    ],
)
def test_worker_settings_out_of_bounds_are_refused(values: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FrontendSettings(**values)
