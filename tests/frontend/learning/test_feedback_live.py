"""Model selection learns from label feedback through the real frontend.

Three real digits classifiers of clearly different quality (~98%, ~47%, ~12%)
serve behind one app. Each round predicts a random digit and sends its true
label back by query id; the policy must end up preferring the good model, and
the served accuracy must approach the good model's. Seeds are fixed (the
frontend's and the digit draws), so a run is reproducible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from clipper.testing.frontend import metric, route, serving, write_routes
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits

ROUNDS = 250


def graded_app(servers: dict[str, ModelServer], policy: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("latency_slo_ms", 5000)
    models = {grade: [server.address] for grade, server in servers.items()}
    return route("digits", models, selection={"type": policy}, **fields)


async def post(http: aiohttp.ClientSession, url: str, body: dict, **headers: str) -> Any:
    async with http.post(url, json=body, headers=headers) as r:
        assert r.status == 200, await r.text()
        return await r.json()


@pytest.mark.parametrize("policy", ["exp3", "exp4"])
async def test_converges_to_the_best_model_under_label_feedback(
    policy: str, routes: Path, graded_servers: dict[str, ModelServer]
) -> None:
    write_routes(routes, graded_app(graded_servers, policy))
    pixels, labels = digits()
    draws = np.random.default_rng(3).integers(len(labels), size=ROUNDS)
    correct = []
    async with serving(routes, seed=11) as fe, aiohttp.ClientSession() as http:
        for i in draws:
            answer = await post(http, f"{fe.url}/digits/predict", {"input": pixels[i].tolist()})
            correct.append(answer["output"] == labels[i])
            body = {"query_id": answer["query_id"], "label": int(labels[i])}
            learned = await post(http, f"{fe.url}/digits/feedback", body)
        text = fe.metrics()
    weights = learned["weights"]
    assert max(weights, key=weights.__getitem__) == "good", weights
    assert weights["good"] > 0.6, weights
    assert np.mean(correct[-100:]) > 0.8
    exported = metric(text, "clipper_frontend_selection_weight", app="digits", model="good")
    assert exported == pytest.approx(weights["good"])
    assert metric(text, "clipper_frontend_feedback_total", app="digits") == ROUNDS


async def test_feedback_by_input_and_per_context_state(
    routes: Path, graded_servers: dict[str, ModelServer]
) -> None:
    write_routes(routes, graded_app(graded_servers, "exp4"))
    pixels, labels = digits()
    async with serving(routes, seed=1) as fe, aiohttp.ClientSession() as http:
        url = f"{fe.url}/digits/feedback"
        body = {"input_batch": pixels[:40].tolist(), "label_batch": labels[:40].tolist()}
        learned = await post(http, url, body, **{"X-Clipper-Context": "user-42"})
        untouched = await post(http, url, {"input": pixels[0].tolist(), "label": 0})
    assert len(learned["batch_losses"]) == 40
    assert set(learned["batch_losses"][0]) == {"good", "fair", "poor"}
    # user-42's ensemble learned from 40 labels: with exp4's eta 0.1 the good model's
    # weight is about 1 / (1 + e**-1.9 + e**-3.4), i.e. 0.85.
    assert learned["weights"]["good"] > 0.75
    # The default context learned from one label only.
    assert untouched["weights"]["good"] < 0.5


async def test_oip_answers_carry_query_ids_for_feedback(
    routes: Path, graded_servers: dict[str, ModelServer]
) -> None:
    write_routes(routes, graded_app(graded_servers, "exp4"))
    pixels, labels = digits()
    tensor = {"name": "input", "datatype": "FP64", "shape": [3, 64], "data": pixels[:3].tolist()}
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        answer = await post(http, f"{fe.url}/v2/models/digits/infer", {"inputs": [tensor]})
        first = answer["parameters"]["query_id"]
        ids = [first, first + 1, first + 2]  # the rows of one request: consecutive ids
        body = {"query_ids": ids, "label_batch": labels[:3].tolist()}
        learned = await post(http, f"{fe.url}/digits/feedback", body)
        async with http.post(f"{fe.url}/digits/feedback", json=body) as r:
            assert r.status == 404  # each id is used up by its feedback
    assert len(learned["batch_losses"]) == 3
    assert learned["batch_losses"][0]["good"] == 0.0


async def test_low_agreement_answers_the_default_with_its_reason(
    routes: Path, graded_servers: dict[str, ModelServer]
) -> None:
    app = graded_app(graded_servers, "exp4", confidence_threshold=1.0, default_output=-1)
    write_routes(routes, app)
    pixels, _ = digits()
    async with serving(routes) as fe, aiohttp.ClientSession() as http:
        body = {"input_batch": pixels[:30].tolist()}
        answers = (await post(http, f"{fe.url}/digits/predict", body))["batch_predictions"]
        text = fe.metrics()
    disagreed = [a for a in answers if a["confidence"] < 1.0]
    assert disagreed  # the poor model disagrees on most digits
    for answer in disagreed:
        assert answer["default"] is True
        assert answer["output"] == -1
        assert answer["default_explanation"].startswith("low_confidence")
    for answer in answers:
        assert answer["models"] == ["good", "fair", "poor"]
    reason = {"app": "digits", "reason": "low_confidence"}
    assert metric(text, "clipper_frontend_default_outputs_total", **reason) == len(disagreed)
