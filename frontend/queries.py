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
from collections.abc import Collection
from dataclasses import dataclass, replace
from itertools import repeat
from operator import is_
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
from clipper.frontend import admission
from clipper.frontend.batching.batcher import RetriesExhausted
from clipper.frontend.cache import Flight, RowKey, cache_keys
from clipper.frontend.records import primary, with_primary
from clipper.frontend.routing.apps import AppRuntime
from clipper.frontend.routing.versions import VersionRuntime
from clipper.frontend.selection import Selection
from clipper.frontend.selection.policy import Combined

# Errors that are the request's fault: the request fails instead of answering defaults.
# A full queue is not among them: for an ensemble it makes a straggler; a row that
# no model could take fails the request at the door (``_refuse_if_overloaded``).
REQUEST_ERRORS = (InvalidInput, PayloadTooLarge)

SLO_MISSED = DeadlineExceeded("slo")
"""What a row whose evaluation did not land by the deadline gets: one shared
instance, never raised, so an expired row costs no exception object."""

Source = tuple["asyncio.Future[Any]", int] | np.ndarray | np.generic | BaseException
"""Where one model's output for one row comes from: a chunk's future and the row's
index in it, the cached output itself (an array, or the scalar that is a row of a
1-D output), or the error that stopped it before it started."""


@dataclass(slots=True)
class Answer:
    """One query's answer."""

    output: Any
    """The prediction (a numpy row), or the app's default output."""
    default: bool = False
    reason: str | None = None
    """Why the default was answered: slo, unavailable, overloaded, retries_exhausted,
    model_error, low_confidence."""
    explanation: str | None = None
    models: tuple[str, ...] = ()
    """The models whose outputs made the answer."""
    confidence: float | None = None
    """Ensembles: the share of selected models that agree with the answer."""
    query_id: int = 0


class Evaluation:
    """The model evaluations for the rows of one request, in flight."""

    __slots__ = (
        "app", "context", "deadline", "flights", "groups", "refused", "selections", "sources",
    )  # fmt: skip

    def __init__(self, app: AppRuntime, context: str, deadline: float) -> None:
        self.app = app
        self.context = context
        self.deadline = deadline
        self.selections: list[Selection] = []
        self.sources: list[dict[str, Source]] = []
        self.flights: dict[int, Flight] = {}
        """The chunks this request waits on (its own and those it joined), by id."""
        self.refused = False
        """Whether an overloaded version refused rows (``_refuse_if_overloaded``)."""
        self.groups: list[Group] = []
        """The version each (row, model) went to (``version_stats`` counts by it)."""

    @property
    def futures(self) -> list[asyncio.Future[Any]]:
        return [flight.future for flight in self.flights.values()]

    def wait_on(self, flight: Flight, joined: bool) -> None:
        if id(flight) not in self.flights:
            if joined:
                flight.join()
            self.flights[id(flight)] = flight

    def abandon(self) -> None:
        """Leave every chunk: one nobody else waits on leaves its queue unevaluated."""
        flights, self.flights = self.flights, {}
        for flight in flights.values():
            flight.leave()


async def start(
    app: AppRuntime,
    rows: np.ndarray,
    context: str,
    deadline: float,
    rng: random.Random,
) -> Evaluation:
    """Select models for every row and send the rows on their way.

    ``Overloaded`` when some row can reach no model because every model selected
    for it is overloaded (its queue is full, or its queue's expected wait already
    exceeds the deadline): the request gets 429 at the door, nothing stays queued.
    """
    evaluation = Evaluation(app, context, deadline)
    if app.single is not None:
        evaluation.selections = [app.single] * len(rows)
    else:
        down = _passed_over(app, deadline, asyncio.get_running_loop().time())
        select = app.policy.select
        evaluation.selections = [select(context, down) for _ in range(len(rows))]
    evaluation.sources = [{} for _ in range(len(rows))]
    try:
        groups = evaluation.groups = _groups(evaluation, rng)
        now = asyncio.get_running_loop().time()
        if app.cache.enabled:
            await _through_cache(evaluation, groups, rows, now)
        else:
            _in_chunks(evaluation, groups, rows, now)
        _refuse_if_overloaded(evaluation)
    except BaseException:
        evaluation.abandon()
        raise
    return evaluation


def _passed_over(app: AppRuntime, deadline: float, now: float) -> frozenset[str]:
    """The models selection leaves out for this request, while another model remains:
    those with no ready replica, and those that could not answer it in time -- every
    weighted version's queue is full or holds more work than the request has left,
    the refusal ``_submit`` would give.

    Selection chooses among models that all answer the query; one that is down or
    overloaded for this deadline is passed over as a down one is, so a request that
    another model can answer in time gets its answer rather than a 429 (an ensemble
    answers with the models that can). When no model could, none is passed over
    for being late: the rows are refused at once, and the client backs off.
    """
    down = app.unavailable()
    late = [
        name
        for name, model in app.models.items()
        if name not in down
        and model.versions
        and all(_refuses(v, deadline, now, len(model.versions) == 1) for v, _ in model.versions)
    ]
    if not late or len(down) + len(late) >= len(app.models):
        return down
    for name in late:
        app.metrics.passed_over(name)
    return down.union(late)


def _refuses(version: VersionRuntime, deadline: float, now: float, alone: bool) -> bool:
    return version.queue.full or admission.too_late(version, deadline, now, alone) is not None


Group = tuple[VersionRuntime, list[tuple[int, str]]]
"""A model version and the (row, model) pairs bound for it."""


def _groups(evaluation: Evaluation, rng: random.Random) -> list[Group]:
    """Each (row, model) the selections ask for, grouped by the version traffic picks.

    A model with no version to serve is recorded as that row's source right away
    (the error becomes its answer) and not grouped.
    """
    groups: dict[int, Group] = {}
    for i, selection in enumerate(evaluation.selections):
        for model in selection.models:
            try:
                version = evaluation.app.models[model].pick(rng)
            except Unavailable as exc:
                evaluation.sources[i][model] = exc
                continue
            group = groups.get(id(version))
            if group is None:
                group = groups[id(version)] = (version, [])
            group[1].append((i, model))
    return list(groups.values())


def _alone(evaluation: Evaluation, version: VersionRuntime) -> bool:
    """Whether ``version`` is its model's only weighted version: then its batch time
    counts in admission as at the door; a canary's versions are judged by their queues
    alone, so one version's slow batches never refuse what the other would answer."""
    model = evaluation.app.models.get(version.model)
    return model is None or len(model.versions) == 1


def _submit(
    evaluation: Evaluation, version: VersionRuntime, rows: np.ndarray, now: float
) -> asyncio.Future[np.ndarray]:
    """Queue one chunk; ``Overloaded`` when the version cannot answer it in time. Asked
    here too when the cache path asked before its lookup: the lookup may yield, and
    the queue may have grown meanwhile."""
    refusal = admission.too_late(version, evaluation.deadline, now, _alone(evaluation, version))
    if refusal is not None:
        raise refusal
    return version.submit(rows, evaluation.deadline, now)


def _in_chunks(evaluation: Evaluation, groups: list[Group], rows: np.ndarray, now: float) -> None:
    for version, members in groups:
        chunk_rows = rows if len(members) == len(rows) else rows[[i for i, _ in members]]
        _send(evaluation, version, members, chunk_rows, now)


def _send(
    evaluation: Evaluation,
    version: VersionRuntime,
    members: list[tuple[int, str]],
    chunk_rows: np.ndarray,
    now: float,
    keys: list[RowKey] | None = None,
) -> None:
    """Queue ``chunk_rows`` as one chunk, ``members[j]``'s row at index ``j``; with
    ``keys``, through the cache (identical rows join it, its outputs fill the cache)."""
    try:
        future = _submit(evaluation, version, chunk_rows, now)
    except (Unavailable, Overloaded) as exc:
        _record(evaluation, members, exc)
        return
    cache = evaluation.app.cache
    flight = Flight(future) if keys is None else cache.expect(keys, future)
    evaluation.wait_on(flight, joined=False)
    sources = evaluation.sources
    for position, (i, model) in enumerate(members):
        sources[i][model] = (future, position)


async def _through_cache(
    evaluation: Evaluation, groups: list[Group], rows: np.ndarray, now: float
) -> None:
    """Per version, in one pass: hits answer, rows in flight join, misses go as one chunk.

    A version that admission refuses (its queue would hold the rows past the
    deadline) gets no lookup: its rows are refused as they would have been at the
    door, a moment earlier, and the keys and lookups would be work for rows already
    lost -- under overload, most of the cache's work. A hit they might have had is
    refused too, as the door refuses it: the door cannot look before the body."""
    cache = evaluation.app.cache
    sources = evaluation.sources
    for version, members in groups:
        refusal = admission.too_late(version, evaluation.deadline, now, _alone(evaluation, version))
        if refusal is not None:
            _record(evaluation, members, refusal)
            continue
        chunk_rows = rows if len(members) == len(rows) else rows[[i for i, _ in members]]
        keys = cache_keys(members[0][1], version.version, chunk_rows)  # one model per version
        found = await cache.lookup(keys)
        if all(map(is_, found, repeat(None))) and len(set(keys)) == len(keys):
            _send(evaluation, version, members, chunk_rows, now, keys)  # every row new, once
            continue
        missed: dict[RowKey, int] = {}  # each missed key -> its row in the chunk of misses
        firsts: list[int] = []  # the rows of the chunk that the chunk of misses holds
        waiting: list[int] = []  # the rows of the chunk that wait for a miss
        for position, hit in enumerate(found):
            if hit is None:
                key = keys[position]
                if key not in missed:
                    missed[key] = len(firsts)
                    firsts.append(position)
                waiting.append(position)
            else:
                i, model = members[position]
                if isinstance(hit, tuple):
                    flight, index = hit
                    evaluation.wait_on(flight, joined=True)
                    sources[i][model] = (flight.future, index)
                else:
                    sources[i][model] = hit
        if not missed:
            continue
        try:
            future = _submit(evaluation, version, chunk_rows[firsts], now)
        except (Unavailable, Overloaded) as exc:
            _record(evaluation, [members[p] for p in waiting], exc)
            continue
        evaluation.wait_on(cache.expect(list(missed), future), joined=False)
        for position in waiting:
            i, model = members[position]
            sources[i][model] = (future, missed[keys[position]])


def _record(evaluation: Evaluation, members: list[tuple[int, str]], error: BaseException) -> None:
    if isinstance(error, Overloaded):
        evaluation.refused = True
    for i, model in members:
        evaluation.sources[i][model] = error


def _refuse_if_overloaded(evaluation: Evaluation) -> None:
    """Raise ``Overloaded`` if a row reached no model and an overloaded one refused it.

    An ensemble's row with one overloaded model goes on with the others (a
    straggler). A row that no model took gets no answer but the default, which a
    client cannot tell from a prediction's quality; 429 with Retry-After tells it
    to back off, and it costs the frontend nothing more. Without a refusal recorded
    (``_record``) no row can have one, and the rows are not scanned.
    """
    if not evaluation.refused:
        return
    for row in evaluation.sources:
        refusal = None
        for source in row.values():
            if not isinstance(source, BaseException):
                break
            if isinstance(source, Overloaded):
                refusal = source
        else:
            if refusal is not None:
                raise refusal


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
        if not isinstance(source, tuple):
            if isinstance(source, BaseException):
                errors.append(source)
            else:  # a cached output
                outputs[model] = source  # type: ignore[assignment]
            continue
        future, index = source
        if not future.done() or future.cancelled():
            errors.append(SLO_MISSED)
        elif (error := future.exception()) is not None:
            if isinstance(error, REQUEST_ERRORS):
                raise error
            errors.append(error)
        else:
            outputs[model] = future.result()[index]
    return outputs, errors


def answer(
    evaluation: Evaluation, i: int, outputs: dict[str, np.ndarray], errors: list[BaseException]
) -> Answer:
    """Row ``i``'s answer from what arrived: combined, or the default with its reason."""
    app = evaluation.app
    if not outputs:
        reason, detail = explain(errors[0] if errors else SLO_MISSED, app)
        return default(app, reason, detail)
    selection = evaluation.selections[i]
    try:
        if next(iter(outputs.values())).dtype.names is None:
            combined = app.policy.combine(evaluation.context, selection, outputs)
        else:
            combined = _combine_records(app, evaluation.context, selection, outputs)
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


def _combine_records(
    app: AppRuntime, context: str, selection: Selection, outputs: dict[str, np.ndarray]
) -> Combined:
    """Models with several outputs: combine the primary (first) output as for one,
    and carry the other outputs of the first answering model (in selection order)
    whose primary output is the combined one -- the winner of a vote -- else of the
    first answering model (a mean is nobody's own output)."""
    combined = app.policy.combine(context, selection, {m: primary(o) for m, o in outputs.items()})
    if len(outputs) == 1:
        return replace(combined, output=np.asarray(next(iter(outputs.values()))))
    chosen = next(
        (m for m in combined.answered if np.array_equal(primary(outputs[m]), combined.output)),
        combined.answered[0],
    )
    return replace(combined, output=with_primary(outputs[chosen], combined.output))


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
    if isinstance(error, Overloaded):
        return "overloaded", error.message
    if isinstance(error, RetriesExhausted):
        return "retries_exhausted", error.message
    if isinstance(error, Unavailable):
        return "unavailable", error.message
    if isinstance(error, ClipperError):
        return "model_error", error.message
    return "model_error", repr(error)
