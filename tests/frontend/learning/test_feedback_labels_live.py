"""Feedback labels checked against the app's outputs through the real frontend.

The issue's labels (``true``, 0.5, -1, 1e308) sent to digits classifiers were
scored as wrong answers and moved the selection weights. Each must be a 400
that says what a label must be, leave the weights where they were, and leave
the query id usable for a good label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from clipper.testing.frontend import metric, route, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits

BAD_LABELS = [True, 0.5, -1, 1e308]


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(url, json=body) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("label", BAD_LABELS)
async def test_a_label_that_cannot_be_a_class_is_a_400_and_moves_no_weight(
    label: object, routes: Path, graded_servers: dict[str, ModelServer]
) -> None:
    models = {grade: [server.address] for grade, server in graded_servers.items()}
    write_routes(routes, route("digits", models, latency_slo_ms=5000, selection={"type": "exp4"}))
    pixels, labels = digits()
    async with serving(routes, seed=3) as fe, aiohttp.ClientSession() as http:
        feedback = f"{fe.url}/digits/feedback"
        status, answer = await post(http, f"{fe.url}/digits/predict", {"input": pixels[0].tolist()})
        assert status == 200, answer
        before = fe.frontend.plane.app("digits").policy.weights("")
        by_id = await post(http, feedback, {"query_id": answer["query_id"], "label": label})
        by_input = await post(http, feedback, {"input": pixels[0].tolist(), "label": label})
        batch = {"query_ids": [answer["query_id"]] * 2, "label_batch": [int(labels[0]), label]}
        in_a_batch = await post(http, feedback, batch)
        after = fe.frontend.plane.app("digits").policy.weights("")
        text = fe.metrics()
        good = await post(http, feedback, {"query_id": answer["query_id"], "label": int(labels[0])})
    for status, body in (by_id, by_input, in_a_batch):
        assert status == 400, body
        assert "so a label must be a non-negative integer" in body["error"], body
    assert "label 1 of app 'digits'" in in_a_batch[1]["error"]
    assert after == before
    assert metric(text, "clipper_frontend_feedback_total", app="digits") == 0
    assert good[0] == 200, good  # the query id was not used up by the bad labels
    assert good[1]["weights"] != before


async def test_class_scores_take_a_class_index_in_range(
    routes: Path, digits_logistic_server: ModelServer
) -> None:
    write_routes(routes, route("probs", {"digits-logistic": [digits_logistic_server.address]}))
    pixels, labels = digits()
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        status, answer = await post(http, f"{fe.url}/probs/predict", {"input": pixels[0].tolist()})
        assert status == 200, answer
        feedback = f"{fe.url}/probs/feedback"
        out_of_range = await post(http, feedback, {"query_id": answer["query_id"], "label": 10})
        boolean = await post(http, feedback, {"input": pixels[0].tolist(), "label": True})
        good = await post(http, feedback, {"query_id": answer["query_id"], "label": int(labels[0])})
    for status, body in (out_of_range, boolean):
        assert status == 400, body
        assert "an integer in [0, 10)" in body["error"], body
    assert good == (200, {"losses": {"digits-logistic": 0.0}, "weights": {"digits-logistic": 1.0}})
