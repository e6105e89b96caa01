"""Shadow rollouts at the frontend, with real digits classifiers of known quality.

The model ``digits`` serves version ``fair`` (~40% right) to callers and mirrors
every query to its Shadow candidate ``good`` (~97%): callers only ever see
``fair``'s answers; labels score both, and the paired counts favour ``good``.
Mirrors past the in-flight bound are dropped and counted, never queued.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from clipper.frontend.queries import Answer
from clipper.testing.frontend import (
    Serving,
    metric,
    route,
    serving,
    start_model_servers,
    write_routes,
)
from clipper.testing.graded_models import GRADES, train_graded
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits

ROWS = 60
EVERY = {"shadow_busy_lag_ms": 0}
"""These tests count every mirror: none may be dropped because the test process's
loop ran late (the busy share has its own tests, tests/frontend/test_mirror_share.py)."""


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModelServer]]:
    """The three graded classifiers as versions of one model, ``digits`` (a model
    server answers metadata for its own model name and version only)."""
    paths = train_graded(tmp_path_factory.mktemp("graded"))
    specs = [
        {
            "framework": "sklearn",
            "uri": paths[g],
            "name": "digits",
            "args": ["--threads", "1", "--version", g],
        }
        for g in GRADES
    ]
    servers = start_model_servers(specs)
    yield dict(zip(GRADES, servers, strict=True))
    for server in servers:
        server.stop()


def shadow_route(servers: dict[str, ModelServer], stable: str, candidate: str) -> dict[str, Any]:
    versions = [
        {"version": stable, "weight": 100, "replicas": [servers[stable].address]},
        {
            "version": candidate,
            "weight": 0,
            "shadow": True,
            "replicas": [servers[candidate].address],
        },
    ]
    return route("digits", {"digits": versions}, latency_slo_ms=5000, cache={"enabled": False})


async def predict_each(fe: Serving, http: aiohttp.ClientSession, rows: np.ndarray) -> list[Any]:
    answers = []
    for row in rows:
        async with http.post(f"{fe.url}/digits/predict", json={"input": row.tolist()}) as r:
            assert r.status == 200, await r.text()
            answers.append(await r.json())
    return answers


async def mirrors_settled(fe: Serving, within_s: float = 30.0) -> None:
    mirror = fe.frontend.plane.mirror
    deadline = time.monotonic() + within_s
    while mirror.inflight_rows > 0:
        assert time.monotonic() < deadline, f"{mirror.inflight_rows} mirrored rows in flight"
        await asyncio.sleep(0.05)


async def test_callers_get_only_the_stable_answers_and_labels_score_both(
    routes: Path, versions: dict[str, ModelServer]
) -> None:
    write_routes(routes, shadow_route(versions, "fair", "good"))
    pixels, labels = digits()
    rows = pixels[:ROWS]
    fair = versions["fair"].infer({"input": rows})
    expected = next(iter(fair.values())).tolist()
    async with serving(routes, **EVERY) as fe, aiohttp.ClientSession() as http:
        answers = await predict_each(fe, http, rows)
        await mirrors_settled(fe)
        body = {
            "query_ids": [a["query_id"] for a in answers],
            "label_batch": labels[:ROWS].tolist(),
        }
        async with http.post(f"{fe.url}/digits/feedback", json=body) as r:
            assert r.status == 200, await r.text()
        text = fe.metrics()
        async with http.get(f"{fe.url}/v1/stats/versions") as r:
            pairs = (await r.json())["shadows"]  # what a controller reads
    assert [a["output"] for a in answers] == expected  # never the candidate's
    assert not any(a["default"] for a in answers)
    [pair] = pairs
    assert (pair["stable"], pair["candidate"], pair["mirrored"]) == ("fair", "good", ROWS)
    assert pair["wins"] + pair["losses"] + pair["ties"] == ROWS
    assert pair["wins"] > 5 * max(1, pair["losses"])
    assert pair["candidate_loss"] < pair["stable_loss"]
    labels_ = {"app": "digits", "model": "digits", "stable": "fair", "candidate": "good"}
    assert metric(text, "clipper_frontend_shadow_mirrored_rows_total", **labels_) == ROWS
    assert metric(text, "clipper_frontend_shadow_compared_labels_total", **labels_) == ROWS
    assert metric(text, "clipper_frontend_shadow_store_bytes") == 0  # every answer used up


async def test_mirrors_past_the_bound_are_dropped_and_counted_never_queued(
    routes: Path, versions: dict[str, ModelServer]
) -> None:
    write_routes(routes, shadow_route(versions, "good", "poor"))
    pixels, _ = digits()
    async with (
        serving(routes, **EVERY, shadow_max_inflight_rows=0) as fe,
        aiohttp.ClientSession() as http,
    ):
        answers = await predict_each(fe, http, pixels[:10])
        await asyncio.sleep(0)  # the mirrors run from the loop once the answers are out
        text = fe.metrics()
    assert not any(a["default"] for a in answers)
    dropped = "clipper_frontend_shadow_dropped_rows_total"
    assert metric(text, dropped, candidate="poor", reason="inflight") == 10
    assert metric(text, "clipper_frontend_shadow_mirrored_rows_total") == 0
    assert metric(text, "clipper_frontend_shadow_max_inflight_rows") == 0


async def test_a_label_for_a_query_the_shadow_never_got_compares_nothing(
    routes: Path, versions: dict[str, ModelServer]
) -> None:
    only = [{"version": "good", "replicas": [versions["good"].address]}]
    write_routes(routes, route("digits", {"digits": only}))
    pixels, labels = digits()
    async with serving(routes, **EVERY) as fe, aiohttp.ClientSession() as http:
        [answer] = await predict_each(fe, http, pixels[:1])
        body = {"query_id": answer["query_id"], "label": int(labels[0])}
        async with http.post(f"{fe.url}/digits/feedback", json=body) as r:
            assert r.status == 200, await r.text()
        assert fe.frontend.plane.mirror.snapshot() == []


async def test_a_label_that_comes_before_the_shadow_answered_is_scored_when_it_lands(
    routes: Path, versions: dict[str, ModelServer]
) -> None:
    """The candidate is paused (SIGSTOP) while callers get their answers and send
    their labels at once; when it resumes, its answers land and are compared."""
    write_routes(routes, shadow_route(versions, "fair", "good"))
    pixels, labels = digits()
    candidate = versions["good"].process
    async with serving(routes, **EVERY) as fe, aiohttp.ClientSession() as http:
        candidate.signal(signal.SIGSTOP)
        try:
            answers = await predict_each(fe, http, pixels[:5])
            ids = [a["query_id"] for a in answers]
            body = {"query_ids": ids, "label_batch": labels[:5].tolist()}
            async with http.post(f"{fe.url}/digits/feedback", json=body) as r:
                assert r.status == 200, await r.text()
            assert fe.frontend.plane.mirror.inflight_rows == 5  # nothing landed yet
        finally:
            candidate.signal(signal.SIGCONT)
        await mirrors_settled(fe)
        [pair] = fe.frontend.plane.mirror.snapshot()
    assert pair["wins"] + pair["losses"] + pair["ties"] == 5
    assert pair["failed"] == 0


async def test_rows_queued_within_the_wait_go_to_the_candidate_as_one_chunk(
    routes: Path, versions: dict[str, ModelServer]
) -> None:
    """Five requests answered over several turns of the event loop, within
    ``shadow_mirror_wait_ms``: one chunk to the candidate, not five. Past the
    in-flight bound (which counts the rows waiting) the later requests' rows are
    dropped at once, the earlier ones sent."""
    write_routes(routes, shadow_route(versions, "fair", "good"))
    pixels, _ = digits()
    async with serving(
        routes, **EVERY, shadow_max_inflight_rows=3, shadow_mirror_wait_ms=1000
    ) as fe:
        plane = fe.frontend.plane
        app = plane.app("digits")
        for i in range(5):
            answer = Answer(output=None, models=("digits",), query_id=1000 + i)
            plane.mirror.after(app, pixels[i : i + 1], [answer])
            await asyncio.sleep(0)  # the next request is answered in a later turn
        [waiting] = plane.mirror.snapshot()
        assert (waiting["mirrored"], waiting["dropped"]) == (0, {"inflight": 2})
        assert plane.mirror.inflight_rows == 3  # the rows waiting count
        await mirrors_settled(fe)
        text = fe.metrics()
        [pair] = plane.mirror.snapshot()
    assert (pair["mirrored"], pair["dropped"], pair["failed"]) == (3, {"inflight": 2}, 0)
    assert metric(text, "clipper_frontend_shadow_mirror_chunks_total", candidate="good") == 1


async def test_a_label_that_comes_while_its_rows_wait_to_be_mirrored_is_scored(
    routes: Path, versions: dict[str, ModelServer]
) -> None:
    """Callers label at once, before the wait is over and their rows were sent: the
    labels wait for the candidate's answers and score them when they land."""
    write_routes(routes, shadow_route(versions, "fair", "good"))
    pixels, labels = digits()
    async with (
        serving(routes, **EVERY, shadow_mirror_wait_ms=1000) as fe,
        aiohttp.ClientSession() as http,
    ):
        answers = await predict_each(fe, http, pixels[:5])
        assert fe.frontend.plane.mirror.snapshot() == []  # nothing sent yet
        body = {"query_ids": [a["query_id"] for a in answers], "label_batch": labels[:5].tolist()}
        async with http.post(f"{fe.url}/digits/feedback", json=body) as r:
            assert r.status == 200, await r.text()
        await mirrors_settled(fe)
        [pair] = fe.frontend.plane.mirror.snapshot()
    assert (pair["mirrored"], pair["wins"] + pair["losses"] + pair["ties"]) == (5, 5)


async def test_answers_awaiting_labels_leave_the_garbage_collectors_lists(
    routes: Path, versions: dict[str, ModelServer]
) -> None:
    """A full store of answers awaiting labels must not lengthen every full garbage
    collection -- a pause of the event loop that callers in flight wait through --
    so each kept entry is one flat tuple, untracked at its first collection, in a
    store the collector does not walk."""
    write_routes(routes, shadow_route(versions, "fair", "good"))
    pixels, _ = digits()
    async with serving(routes, **EVERY) as fe, aiohttp.ClientSession() as http:
        query_ids = [a["query_id"] for a in await predict_each(fe, http, pixels[:10])]
        await mirrors_settled(fe)
        store = fe.frontend.plane.mirror._kept
        kept = [store.get(query_id) for query_id in query_ids]
    gc.collect()  # one collection: a flat tuple needs no more
    assert all(entry is not None for entry in kept)
    assert not any(gc.is_tracked(entry) for entry in kept)
    assert not gc.is_tracked(store._values)
    assert not gc.is_tracked(store._where)
