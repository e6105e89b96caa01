"""Clipper's REST API: ``POST /{app}/predict`` and ``POST /{app}/feedback``.

Predict takes ``{"input": row}`` (one query) or ``{"input_batch": [row, ...]}``
(one query per row); a model with several inputs takes an object of them,
``{"input": {"a": row, "b": row}}`` (or ``"input_batch": {"a": rows, "b": rows}``).
It answers, per query::

    {"query_id": 17, "output": 3, "default": false, "default_explanation": null,
     "models": ["svm"]}

plus ``confidence`` for ensembles. A model with several outputs answers its
first (primary) output, or the one named by ``"output": "name"`` in the body
(an unknown name is a 400). A batch answers ``{"batch_predictions": [...]}``
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
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from aiohttp import web

from clipper.common.errors import InvalidInput
from clipper.frontend.dataplane import DataPlane
from clipper.frontend.metrics import Metrics
from clipper.frontend.oip import declared_inputs
from clipper.frontend.queries import Answer
from clipper.frontend.records import field, is_record, pack
from clipper.frontend.rest.http import (
    CONTEXT,
    Handler,
    endpoint,
    json_object,
    json_response,
    read_body,
)
from clipper.frontend.routing.apps import AppRuntime
from clipper.frontend.signature import rows_from_json


def answer_json(
    answer: Answer, output: str | None = None, primary: Callable[[], str] | None = None
) -> dict[str, Any]:
    """``output`` names the output to answer (else the primary); ``primary`` tells the
    app's primary output name, for a default that is a mapping of outputs."""
    body = {
        "query_id": answer.query_id,
        "output": _output(answer, output, primary),
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
        rows, batch = _rows(body, app, "predict")
        output = _output_name(body)
        context = request.headers.get(CONTEXT, "")
        answers = await self.plane.predict(name, rows, context, arrived=start)
        if output is not None and not any(is_record(a.output) for a in answers):
            _check_single_output(answers, output, app.output_name())
        if batch:
            predictions = [answer_json(a, output, app.output_name) for a in answers]
            response = json_response({"batch_predictions": predictions})
        else:
            response = json_response(answer_json(answers[0], output, app.output_name))
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
            rows, _ = _rows(body, app, "feedback", batch)
            losses = await self.plane.feedback_by_input(name, rows, labels, context)
        result: dict[str, Any] = {"batch_losses": losses} if batch else {"losses": losses[0]}
        result["weights"] = app.policy.weights(context)
        return json_response(result)


def _rows(
    body: dict[str, Any], app: AppRuntime, what: str, batch: bool | None = None
) -> tuple[np.ndarray, bool]:
    if "input" in body and batch is not True:
        return _parse(body["input"], False, app, "input"), False
    if "input_batch" in body and batch is not False:
        return _parse(body["input_batch"], True, app, "input_batch"), True
    if what == "predict":
        raise InvalidInput('predict needs "input" (one row) or "input_batch" (a list of rows)')
    raise InvalidInput(
        'feedback needs "query_id" or "input" with "label", '
        'or "query_ids" or "input_batch" with "label_batch"'
    )


def _parse(value: Any, batch: bool, app: AppRuntime, what: str) -> np.ndarray:
    """One input's rows; a model with several inputs takes an object ``{name: rows}``
    (each as ``input`` or ``input_batch`` would hold it), as records."""
    if not isinstance(value, dict):
        return rows_from_json(value, batch, app.signature(), what)
    declared = declared_inputs(app, list(value))
    return pack(
        {
            name: rows_from_json(part, batch, declared.get(name), f"{what} '{name}'")
            for name, part in value.items()
        }
    )


def _output_name(body: dict[str, Any]) -> str | None:
    name = body.get("output")
    if name is not None and not isinstance(name, str):
        raise InvalidInput(f'"output" names one of the model\'s outputs; got {name!r}')
    return name


def _output(answer: Answer, name: str | None, primary: Callable[[], str] | None) -> Any:
    """The answer's primary output, or the one named; a default that is a mapping
    ``{output: value}`` answers the named output's value, else the primary's (the
    first declared output, else the mapping's first entry)."""
    value = answer.output
    if is_record(value):
        return field(value, name)
    if answer.default and isinstance(value, Mapping) and value:
        if name is None:
            first = primary() if primary is not None else None
            return value[first] if first in value else next(iter(value.values()))
        if name not in value:
            known = ", ".join(f"'{k}'" for k in value)
            raise InvalidInput(f"unknown output '{name}'; the app's outputs are {known}")
        return value[name]
    return value


def _check_single_output(answers: list[Answer], name: str, output_name: str) -> None:
    """An app with one output: naming another is a mistake the client should hear of."""
    mapped = [a.output for a in answers if a.default and isinstance(a.output, Mapping)]
    if not mapped and name != output_name:
        raise InvalidInput(f"unknown output '{name}'; the app's output is '{output_name}'")


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
