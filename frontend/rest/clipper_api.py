"""Clipper's REST API: ``POST /{app}/predict`` and ``POST /{app}/feedback``.

Predict takes ``{"input": row}`` (one query) or ``{"input_batch": [row, ...]}``
(one query per row) and answers, per query::

    {"query_id": 17, "output": 3, "default": false, "default_explanation": null,
     "models": ["svm"]}

plus ``confidence`` for ensembles. A batch answers ``{"batch_predictions": [...]}``
with one such object per row, as Clipper did.

Feedback takes a label for an answered query, ``{"query_id": 17, "label": 3}``,
or for an input, ``{"input": row, "label": 3}`` (the selected models evaluate it,
from the cache when they can), or the batch forms ``{"query_ids": [...],
"label_batch": [...]}`` / ``{"input_batch": [...], "label_batch": [...]}``. It
answers each model's loss and the app's selection weights in the request's
context. The context (``X-Clipper-Context`` header) keys per-user selection
state; feedback by query id uses the context the query was answered in.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from aiohttp import web

from clipper.common.errors import InvalidInput
from clipper.frontend.dataplane import DataPlane
from clipper.frontend.metrics import Metrics
from clipper.frontend.queries import Answer
from clipper.frontend.rest.http import (
    CONTEXT,
    Handler,
    endpoint,
    json_object,
    json_response,
    read_body,
)
from clipper.frontend.signature import Signature, rows_from_json


def answer_json(answer: Answer) -> dict[str, Any]:
    body = {
        "query_id": answer.query_id,
        "output": answer.output,
        "default": answer.default,
        "default_explanation": answer.explanation,
        "models": answer.models,
    }
    if answer.confidence is not None:
        body["confidence"] = answer.confidence
    return body


class ClipperApi:
    def __init__(self, plane: DataPlane, metrics: Metrics, max_body_bytes: int) -> None:
        self.plane = plane
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    def routes(self) -> dict[str, Handler]:
        """Handlers by the last path segment of ``POST /{app}/...``."""
        return {
            "predict": endpoint("clipper", self.metrics, self.predict),
            "feedback": endpoint("clipper", self.metrics, self.feedback),
        }

    async def predict(self, request: web.BaseRequest, name: str) -> web.Response:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.plane.door(name, start)
        body = json_object(await read_body(request, self.max_body_bytes))
        app = self.plane.app(name)
        rows, batch = _rows(body, app.signature(), "predict")
        context = request.headers.get(CONTEXT, "")
        answers = await self.plane.predict(name, rows, context, arrived=start)
        if batch:
            response = json_response({"batch_predictions": [answer_json(a) for a in answers]})
        else:
            response = json_response(answer_json(answers[0]))
        app.metrics.latency("clipper").observe(loop.time() - start)
        return response

    async def feedback(self, request: web.BaseRequest, name: str) -> web.Response:
        body = json_object(await read_body(request, self.max_body_bytes))
        app = self.plane.app(name)
        context = request.headers.get(CONTEXT, "")
        batch = "label_batch" in body
        labels = _labels(body, batch)
        if "query_id" in body or "query_ids" in body:
            ids = _query_ids(body, batch)
            losses = await self.plane.feedback_by_id(name, ids, labels)
        else:
            rows, _ = _rows(body, app.signature(), "feedback", batch)
            losses = await self.plane.feedback_by_input(name, rows, labels, context)
        result: dict[str, Any] = {"batch_losses": losses} if batch else {"losses": losses[0]}
        result["weights"] = app.policy.weights(context)
        return json_response(result)


def _rows(
    body: dict[str, Any], signature: Signature | None, what: str, batch: bool | None = None
) -> tuple[np.ndarray, bool]:
    if "input" in body and batch is not True:
        return rows_from_json(body["input"], False, signature, "input"), False
    if "input_batch" in body and batch is not False:
        return rows_from_json(body["input_batch"], True, signature, "input_batch"), True
    if what == "predict":
        raise InvalidInput('predict needs "input" (one row) or "input_batch" (a list of rows)')
    raise InvalidInput(
        'feedback needs "query_id" or "input" with "label", '
        'or "query_ids" or "input_batch" with "label_batch"'
    )


def _labels(body: dict[str, Any], batch: bool) -> list[Any]:
    if batch:
        labels = body["label_batch"]
        if not isinstance(labels, list) or not labels:
            raise InvalidInput('"label_batch" must be a non-empty list of labels')
        return labels
    if "label" not in body:
        raise InvalidInput('feedback needs a "label" (or "label_batch" for several queries)')
    return [body["label"]]


def _query_ids(body: dict[str, Any], batch: bool) -> list[int]:
    ids = body.get("query_ids") if batch else [body.get("query_id")]
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        key = '"query_ids" must be a list of integers' if batch else '"query_id" must be an integer'
        raise InvalidInput(f"{key} (as answered by predict)")
    return ids
