"""Answering the queries of one request: select, evaluate, wait, combine.

Each row of a request is one query. For each, the app's policy selects models
(one, or all for an ensemble); each selected model picks a version by traffic
weight; the row goes to that version's queue -- through the app's cache when it
has one, so a repeated row is a hit and identical rows in flight share one
evaluation. Without a cache, the rows of a request bound for the same version
travel together as one chunk, which the batcher may split across batches.

The request then waits until every evaluation is done or its deadline passes,
whichever comes first, on one timer and one future (no task per row). At that
point it combines what arrived (straggler mitigation: an ensemble answers with
the models that made it) and answers the app's default output, with a reason,
for rows that got nothing or whose ensemble agreed too little. Evaluations still
running are abandoned: their queued rows are dropped before they reach a model.

Errors that are the client's (bad input the model rejected, a full queue) fail
the whole request; errors that are the system's (slow, down or failing models)
become default answers, because an app promises an answer within its SLO.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from clipper.common.errors import (
    ClipperError,
    DeadlineExceeded,
    InvalidInput,
    Overloaded,
    PayloadTooLarge,
    Unavailable,
)
from clipper.frontend.batching.batcher import RetriesExhausted
from clipper.frontend.cache import cache_key
from clipper.frontend.routing.apps import AppRuntime
from clipper.frontend.routing.versions import VersionRuntime
from clipper.frontend.selection import Selection

# Errors that are the request's fault: the request fails instead of answering defaults.
REQUEST_ERRORS = (InvalidInput, Overloaded, PayloadTooLarge)

Source = tuple["asyncio.Future[Any]", int] | BaseException
"""Where one model's output for one row comes from: a chunk's future and the row's
index in it, a cache task (index -1) that yields ``(output, hit)``, or the error
that stopped it before it started."""


@dataclass(slots=True)
class Answer:
    """One query's answer."""

    output: Any
    """The prediction (a numpy row), or the app's default output."""
    default: bool = False
    reason: str | None = None
    """Why the default was answered: slo, unavailable, retries_exhausted, model_error,
    low_confidence."""
    explanation: str | None = None
    models: tuple[str, ...] = ()
    """The models whose outputs made the answer."""
    confidence: float | None = None
    """Ensembles: the share of selected models that agree with the answer."""
    query_id: int = 0


class Evaluation:
    """The model evaluations for the rows of one request, in flight."""

    __slots__ = ("app", "context", "deadline", "futures", "selections", "sources")

    def __init__(self, app: AppRuntime, context: str, deadline: float) -> None:
        self.app = app
        self.context = context
        self.deadline = deadline
        self.selections: list[Selection] = []
        self.sources: list[dict[str, Source]] = []
        self.futures: dict[int, asyncio.Future[Any]] = {}

    def abandon(self) -> None:
        """Cancel what is still running: queued rows leave their queue unevaluated."""
        for future in self.futures.values():
            if not future.done():
                future.cancel()


def start(
    app: AppRuntime, rows: np.ndarray, context: str, deadline: float, rng: random.Random
) -> Evaluation:
    """Select models for every row and send the rows on their way."""
    evaluation = Evaluation(app, context, deadline)
    if app.single is not None:
        evaluation.selections = [app.single] * len(rows)
    else:
        select = app.policy.select
        evaluation.selections = [select(context) for _ in range(len(rows))]
    evaluation.sources = [{} for _ in range(len(rows))]
    try:
        if app.cache.enabled:
            _through_cache(evaluation, rows, rng)
        else:
            _in_chunks(evaluation, rows, rng)
    except BaseException:
        evaluation.abandon()
        raise
    return evaluation


def _picks(evaluation: Evaluation, rng: random.Random) -> Iterator[tuple[int, str, VersionRuntime]]:
    """Each (row, model) the selections ask for, with the version traffic picks for it.

    A model with no version to serve is recorded as that row's source right away
    (the error becomes its answer) and not yielded.
    """
    for i, selection in enumerate(evaluation.selections):
        for model in selection.models:
            try:
                version = evaluation.app.models[model].pick(rng)
            except Unavailable as exc:
                evaluation.sources[i][model] = exc
                continue
            yield i, model, version


def _through_cache(evaluation: Evaluation, rows: np.ndarray, rng: random.Random) -> None:
    cache = evaluation.app.cache
    for i, model, version in _picks(evaluation, rng):
        compute = partial(_evaluate_row, version, rows[i : i + 1], evaluation.deadline)
        key = cache_key(model, version.version, rows[i])
        task = asyncio.ensure_future(cache.get_or_compute(key, compute))
        evaluation.futures[id(task)] = task
        evaluation.sources[i][model] = (task, -1)


async def _evaluate_row(version: VersionRuntime, row: np.ndarray, deadline: float) -> np.ndarray:
    future = version.submit(row, deadline, asyncio.get_running_loop().time())
    return (await future)[0]


def _in_chunks(evaluation: Evaluation, rows: np.ndarray, rng: random.Random) -> None:
    groups: dict[int, tuple[VersionRuntime, list[tuple[int, str]]]] = {}
    for i, model, version in _picks(evaluation, rng):
        groups.setdefault(id(version), (version, []))[1].append((i, model))
    now = asyncio.get_running_loop().time()
    for version, members in groups.values():
        chunk_rows = rows if len(members) == len(rows) else rows[[i for i, _ in members]]
        try:
            future = version.submit(chunk_rows, evaluation.deadline, now)
        except Unavailable as exc:
            for i, model in members:
                evaluation.sources[i][model] = exc
            continue
        evaluation.futures[id(future)] = future
        for position, (i, model) in enumerate(members):
            evaluation.sources[i][model] = (future, position)


async def wait_until(futures: Collection[asyncio.Future[Any]], deadline: float) -> None:
    """Return when every future is done or at ``deadline``, whichever is first."""
    pending = [f for f in futures if not f.done()]
    if not pending:
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    remaining = len(pending)

    def one_done(_: object) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0 and not waiter.done():
            waiter.set_result(None)

    for future in pending:
        future.add_done_callback(one_done)
    timer = loop.call_at(deadline, _resolve, waiter)
    try:
        await waiter
    finally:
        timer.cancel()
        for future in pending:
            future.remove_done_callback(one_done)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def outputs_of(evaluation: Evaluation, i: int) -> tuple[dict[str, np.ndarray], list[BaseException]]:
    """Row ``i``'s outputs by model, and the errors of the models that gave none."""
    outputs: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []
    for model, source in evaluation.sources[i].items():
        if isinstance(source, BaseException):
            errors.append(source)
            continue
        future, index = source
        if not future.done() or future.cancelled():
            errors.append(DeadlineExceeded("slo"))
        elif (error := future.exception()) is not None:
            if isinstance(error, REQUEST_ERRORS):
                raise error
            errors.append(error)
        elif index < 0:
            outputs[model] = future.result()[0]
        else:
            outputs[model] = future.result()[index]
    return outputs, errors


def answer(
    evaluation: Evaluation, i: int, outputs: dict[str, np.ndarray], errors: list[BaseException]
) -> Answer:
    """Row ``i``'s answer from what arrived: combined, or the default with its reason."""
    app = evaluation.app
    if not outputs:
        reason, detail = explain(errors[0] if errors else DeadlineExceeded("slo"), app)
        return default(app, reason, detail)
    selection = evaluation.selections[i]
    try:
        combined = app.policy.combine(evaluation.context, selection, outputs)
    except ClipperError as exc:
        return default(app, "model_error", exc.message)
    ensemble = len(selection.models) > 1
    threshold = app.config.confidence_threshold
    if threshold is not None and combined.confidence < threshold:
        detail = f"confidence {combined.confidence:.2f} is below the threshold {threshold:.2f}"
        return default(app, "low_confidence", detail, combined.answered, combined.confidence)
    return Answer(
        combined.output,
        models=combined.answered,
        confidence=combined.confidence if ensemble else None,
    )


def default(
    app: AppRuntime,
    reason: str,
    detail: str,
    models: tuple[str, ...] = (),
    confidence: float | None = None,
) -> Answer:
    app.metrics.default(reason)
    return Answer(
        app.config.default_output,
        default=True,
        reason=reason,
        explanation=f"{reason}: {detail}",
        models=models,
        confidence=confidence,
    )


def explain(error: BaseException, app: AppRuntime) -> tuple[str, str]:
    """The default reason for a model's error, and its detail."""
    if isinstance(error, DeadlineExceeded | asyncio.CancelledError):
        return "slo", f"no prediction within the {app.config.latency_slo_ms:g} ms latency objective"
    if isinstance(error, RetriesExhausted):
        return "retries_exhausted", error.message
    if isinstance(error, Unavailable):
        return "unavailable", error.message
    if isinstance(error, ClipperError):
        return "model_error", error.message
    return "model_error", repr(error)
