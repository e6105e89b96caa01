"""The frontend's operations, independent of any transport.

REST (Clipper's API and OIP's), and gRPC (OIP's) are thin layers over this
class: they decode a request into numpy rows, call ``predict``, ``feedback`` or
a metadata method, and encode the answer. So every API has the same semantics,
the same errors (``ClipperError``s, mapped once per transport) and the same
defaults, and a new transport is a codec, not a second implementation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clipper.common.errors import InvalidInput, Overloaded
from clipper.common.tasks import TaskRegistry
from clipper.frontend import queries
from clipper.frontend.admission import (
    Admission,
    QueueFull,
    TooManyInFlight,
    WouldMissDeadline,
    too_late,
)
from clipper.frontend.queries import Answer
from clipper.frontend.records import primary
from clipper.frontend.routing.apps import AppRuntime
from clipper.frontend.routing.router import Router
from clipper.frontend.selection import Selection
from clipper.frontend.selection.labels import OutputSpec, check_label
from clipper.frontend.shadow import ShadowCollector, ShadowMirror
from clipper.frontend.state import SelectionState
from clipper.frontend.version_stats import VersionStats, VersionStatsCollector, watch

log = logging.getLogger(__name__)

MAX_HOLD_S = 0.5
"""The longest a paced refusal is held (``FrontendSettings.pace_refusals``)."""


class DataPlane:
    """Predict, learn from feedback, describe apps."""

    def __init__(
        self,
        router: Router,
        state: SelectionState,
        tasks: TaskRegistry | None = None,
    ) -> None:
        self.router = router
        self.state = state
        """Learned selection state and the query log (memory, or shared in Redis)."""
        self.tasks = tasks or TaskRegistry()
        self.draining = False
        """Set on SIGTERM (``Frontend.drain``): still answering, but not ready."""
        self.admission = Admission(router.settings.max_inflight_rows)
        settings = router.settings
        self.mirror = ShadowMirror(
            settings.shadow_max_inflight_rows,
            settings.shadow_max_bytes,
            settings.shadow_mirror_wait_ms / 1000,
            settings.shadow_busy_lag_ms / 1000,
            settings.shadow_busy_cpu_share,
        )
        """Shadow rollouts: queries mirrored to candidates, compared on labels."""
        router.metrics.registry.register(ShadowCollector(self.mirror))
        self.version_stats = VersionStats(router.settings.version_stats_max_entries)
        """Per-version counters for rollout analysis (``GET /v1/stats/versions``)."""
        router.metrics.registry.register(VersionStatsCollector(self.version_stats))
        router.metrics.watch_admission(
            lambda: self.admission.rows, lambda: self.admission.limit, self.admission.max_rows
        )

    @property
    def live(self) -> bool:
        return True

    @property
    def accepting(self) -> bool:
        """The routing table is loaded: every query gets an answer, a model's or the
        app's default. What a load balancer's readiness check wants (``/readyz``):
        a frontend whose models are all down still answers defaults by the SLO,
        which beats being taken out of its Service. A long-lived task that died for
        good (``failed_tasks``) makes it False: that frontend cannot keep its promise.
        So does draining: a frontend about to stop wants no new clients."""
        return self.router.loaded and self.tasks.healthy and not self.draining

    @property
    def failed_tasks(self) -> dict[str, str]:
        """Long-lived tasks that died and will not be restarted: name -> error."""
        return self.tasks.failures

    @property
    def ready(self) -> bool:
        """The routing table is loaded and every app can answer with a model (OIP's
        server readiness, ``/v2/health/ready``), and it is not draining."""
        return (
            not self.draining
            and self.router.loaded
            and all(app.ready for app in self.router.apps.values())
        )

    def app(self, name: str) -> AppRuntime:
        """The app called ``name``; ``NotFound`` names the apps that exist."""
        return self.router.app(name)

    def door(self, app_name: str, arrived: float) -> None:
        try:
            self._door(app_name, arrived)
        except Overloaded as exc:
            self._pace(exc, app_name)
            raise

    def _pace(self, refusal: Overloaded, app_name: str) -> None:
        """How long the transport holds ``refusal``: the app's objective, if paced, and
        never more than ``MAX_HOLD_S`` (an app with a long objective is not one whose
        clients hammer)."""
        if self.router.settings.pace_refusals:
            refusal.hold_s = min(self.router.app(app_name).slo_s, MAX_HOLD_S)

    def _door(self, app_name: str, arrived: float) -> None:
        """The checks that cost nothing, before the body is read or decoded: 429 when
        the frontend is at its bound of rows in flight, or when the app has one model
        and none of its versions could take the rows (each queue full) or drain its
        queue before this request's deadline. A full queue is refused here rather than
        after the body is decoded: at 256 connections of 16 rows, decoding bodies only
        to refuse them was a fifth of the frontend's CPU."""
        app = self.router.app(app_name)
        if self.admission.full:
            app.metrics.shed("inflight")
            raise self.admission.refusal()
        if app.single is None:
            return  # several models: an overloaded one is passed over, decided per request
        now = asyncio.get_running_loop().time()
        deadline = arrived + app.slo_s
        refusal: Overloaded | None = None
        for version, _ in app.models[app.single.models[0]].versions:
            if version.queue.full:
                refusal = QueueFull(f"model {version.name}'s queue is full", retry_after=0.1)
                continue
            refusal = too_late(version, deadline, now)
            if refusal is None:
                return
        if refusal is not None:
            app.metrics.shed("queue_full" if isinstance(refusal, QueueFull) else "late")
            raise refusal

    async def predict(
        self,
        app_name: str,
        rows: np.ndarray,
        context: str = "",
        deadline: float | None = None,
        arrived: float | None = None,
    ) -> list[Answer]:
        """One answer per row, each by the app's deadline (or the caller's, if sooner).

        The deadline counts from ``arrived`` (the event loop's time when the
        transport saw the request, before it read the body), else from now. A
        request whose deadline has already passed gets defaults without reaching a
        model; one the frontend or its models cannot take now gets ``Overloaded``.
        """
        app = self.router.app(app_name)
        now = asyncio.get_running_loop().time()
        until = (now if arrived is None else arrived) + app.slo_s
        if deadline is not None:
            until = min(until, deadline)
        if until <= now:
            return [self._expired(app) for _ in range(len(rows))]
        try:
            self.admission.enter(len(rows))
        except TooManyInFlight as exc:
            app.metrics.shed("inflight")
            self._pace(exc, app_name)
            raise
        try:
            answers = await self._predict(
                app, rows, context, until, now if arrived is None else arrived
            )
        except Overloaded as exc:
            self._pace(exc, app_name)
            raise
        finally:
            self.admission.leave(len(rows))
        late = any(answer.reason == "slo" for answer in answers)
        self.admission.answered(len(rows), late, asyncio.get_running_loop().time(), app.slo_s)
        return answers

    async def _predict(
        self, app: AppRuntime, rows: np.ndarray, context: str, until: float, arrived: float
    ) -> list[Answer]:
        try:
            evaluation = await queries.start(app, rows, context, until, self.router.rng)
        except Overloaded as exc:
            app.metrics.shed("late" if isinstance(exc, WouldMissDeadline) else "queue_full")
            raise
        try:
            answered_at = watch(evaluation.futures)
            await queries.wait_until(evaluation.futures, until)
            answers = []
            versions = _versions(evaluation)
            for i in range(len(rows)):
                outputs, errors = queries.outputs_of(evaluation, i)
                answer = queries.answer(evaluation, i, outputs, errors)
                answer.query_id = self.state.new_id()
                if outputs:
                    selection = evaluation.selections[i]
                    self.state.remember(
                        answer.query_id, app.name, context, selection, outputs, versions[i]
                    )
                answers.append(answer)
            self.mirror.after(app, rows, answers)
            self.version_stats.record(app, evaluation, answers, answered_at, arrived)
        finally:
            evaluation.abandon()
        if log.isEnabledFor(logging.DEBUG):
            defaults = [a.reason for a in answers if a.default]
            log.debug(
                "%s: %d rows, context %r, defaults %s", app.name, len(answers), context, defaults
            )
        return answers

    def _expired(self, app: AppRuntime) -> Answer:
        detail = "the deadline passed before the request was read"
        answer = queries.default(app, "slo", detail)
        answer.query_id = self.state.new_id()
        return answer

    async def feedback_by_id(
        self, app_name: str, query_ids: Sequence[int], labels: Sequence[Any]
    ) -> list[dict[str, float]]:
        """Learn from labels for answered queries; returns each model's loss per query."""
        app = self.router.app(app_name)
        _same_length(query_ids, labels, "query ids")
        _check_labels(app, labels)
        entries = await self.state.recall(app_name, query_ids)
        scored = [  # every label is checked before any query id is used up
            (e.context, e.selection, _losses(app, e.outputs, label))
            for e, label in zip(entries, labels, strict=True)
        ]
        used = await self.state.use_up(app_name, query_ids)
        # An id another feedback used up meanwhile (perhaps on another replica) is
        # not learned from twice, nor counted twice for rollout analysis or a Shadow
        # comparison; its losses are still answered.
        learn = [s if fresh else (s[0], s[1], {}) for s, fresh in zip(scored, used, strict=True)]
        for query_id, entry, label, fresh in zip(query_ids, entries, labels, used, strict=True):
            if fresh:
                self.mirror.score(app, query_id, entry, label)
        for entry, (_, _, losses) in zip(entries, learn, strict=True):
            self._count_losses(app, entry.versions, losses)
        self._learn(app, learn)
        await self.state.commit()
        return [losses for _, _, losses in scored]

    def _count_losses(
        self, app: AppRuntime, versions: Mapping[str, str], losses: dict[str, float]
    ) -> None:
        """Each answering version's loss, for rollout analysis."""
        for model, loss in losses.items():
            version = versions.get(model)
            if version is not None:
                self.version_stats.record_loss(app.name, model, version, loss)

    async def feedback_by_input(
        self, app_name: str, rows: np.ndarray, labels: Sequence[Any], context: str = ""
    ) -> list[dict[str, float]]:
        """Learn from labelled inputs: the selected models evaluate them (cache first)."""
        app = self.router.app(app_name)
        _same_length(rows, labels, "inputs")
        _check_labels(app, labels)
        until = asyncio.get_running_loop().time() + app.slo_s
        evaluation = await queries.start(app, rows, context, until, self.router.rng)
        try:
            await queries.wait_until(evaluation.futures, until)
            scored = []
            versions = _versions(evaluation)
            for i, label in enumerate(labels):
                outputs, _ = queries.outputs_of(evaluation, i)
                losses = _losses(app, outputs, label)
                scored.append((context, evaluation.selections[i], losses))
                self._count_losses(app, versions[i], losses)
        finally:
            evaluation.abandon()
        learned = self._learn(app, scored)
        await self.state.commit()
        return learned

    def _learn(
        self, app: AppRuntime, scored: list[tuple[str, Selection, dict[str, float]]]
    ) -> list[dict[str, float]]:
        for context, selection, losses in scored:
            if losses:
                deltas = app.policy.update(context, selection, losses)
                if deltas:
                    self.state.learned(app, context, deltas)
        app.metrics.feedback.inc(len(scored))
        return [losses for _, _, losses in scored]

    def metadata(self, app_name: str) -> dict[str, Any]:
        """OIP model metadata of an app (its inputs and outputs)."""
        app = self.router.app(app_name)
        inputs = [
            {"name": sig.name, "datatype": sig.datatype, "shape": [-1, *sig.row_shape]}
            for sig in app.input_signatures()
        ]
        return {
            "name": app.name,
            "versions": [],
            "platform": "clipper",
            "inputs": inputs,
            "outputs": [_tensor(spec) for spec in app.output_metadata()],
        }


def _versions(evaluation: queries.Evaluation) -> list[dict[str, str]]:
    """Each row's version by model (what ``queries.start`` grouped it to). One version
    for every row (the common case) is one dict shared by all: read, never written."""
    rows = len(evaluation.sources)
    groups = evaluation.groups
    if len(groups) == 1 and len(groups[0][1]) == rows:
        version, members = groups[0]
        return [{members[0][1]: version.version}] * rows
    versions: list[dict[str, str]] = [{} for _ in range(rows)]
    for version, members in groups:
        for i, model in members:
            versions[i][model] = version.version
    return versions


def _check_labels(app: AppRuntime, labels: Sequence[Any]) -> None:
    """Every label against the models' declared output, before any is used: a label
    that cannot be right (``true``, 0.5, -1 for a classifier) is a 400 and moves no
    weight. Each scored output is checked again by the loss (the declared shape
    may be ``-1``)."""
    outputs = app.output_metadata()
    spec = OutputSpec.of_metadata(outputs[0].datatype, list(outputs[0].shape)) if outputs else None
    if spec is None:
        return
    loss = app.policy.params.loss
    for i, label in enumerate(labels):
        try:
            check_label(label, spec, loss)
        except InvalidInput as exc:
            where = f"label {i} of app '{app.name}'" if len(labels) > 1 else f"app '{app.name}'"
            raise InvalidInput(f"{where}: {exc.message}") from None


def _losses(app: AppRuntime, outputs: dict[str, np.ndarray], label: Any) -> dict[str, float]:
    """Each model's loss; a model with several outputs is scored on its primary one."""
    return {model: app.policy.loss(primary(output), label) for model, output in outputs.items()}


def _same_length(keys: Sequence[Any] | np.ndarray, labels: Sequence[Any], what: str) -> None:
    if len(keys) != len(labels):
        raise InvalidInput(f"feedback has {len(keys)} {what} but {len(labels)} labels")


def _tensor(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}
