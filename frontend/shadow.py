"""Shadow rollouts at the frontend: mirror queries to the candidate, score both on labels.

A model whose ModelDeployment rolls out a candidate in Shadow mode has one
weighted version (the stable one, which answers callers) and ``shadows``
(``ModelRuntime.shadows``: the candidate, and keepBest's challengers). Once a
request's answers are built, the rows that the stable version answered are sent
to each shadow as well, and what it answers is kept by query id -- never
returned. When a label for the query arrives (feedback by id), the stable
version's output and each shadow's are scored with the app's loss and each pair
is counted: the shadow's loss lower (a win), higher (a loss), or equal (a tie).
Those cumulative counts are what the rollout machine's sequential test reads
(``clipper.common.rollout.sequential``), summed over the app's frontends.

Mirroring costs model capacity, never caller latency:

- the mirror is sent after the caller's answers exist, from a timer callback
  (``shadow_mirror_wait_ms`` later; with 0, once the loop's turn is over): the
  caller never waits for it, and no task is created for it;
- it is sent per chunk, not per request: the rows of the requests answered
  meanwhile (a batch of the stable version answers several at once) wait
  together and go as one chunk per (app, candidate) -- one deadline check, one
  future, one callback for them all, so the work left on the frontend's loop per
  mirrored row is small (``clipper_frontend_shadow_mirror_chunks_total`` says
  how well they group). Waiting rows count as in flight, so the bound below
  bounds them too, and a label that comes first waits for them;
- the answers awaiting labels are plain tuples the garbage collector stops
  tracking (``KEPT_WIDTH``), kept where it never walks them
  (``clipper.frontend.untracked``): a full store adds nothing to the full
  collections that pause the loop for every caller;
- the candidate has its own queue (its own ``VersionRuntime``), so the caller's
  version never queues behind mirrored rows;
- mirroring yields to callers when the frontend is busy (``MirrorShare``): while
  the event loop is backlogged (a probe timer runs more than
  ``shadow_busy_lag_ms`` late) or its thread is on a core for
  ``shadow_busy_cpu_share`` of the time or more, the share of answered requests
  that are mirrored halves, down to ``MIN_SHARE``, and it grows back while the
  loop has time to spare; the rest are dropped as ``busy``. On a frontend short
  of CPU the mirror's own work (the candidate's call, keeping its answers) would
  otherwise lengthen every caller's wait: measured at 16 closed-loop connections
  on a 2-core machine, mirroring everything cost about 15% more frontend CPU per
  request and the same in caller latency. Istio and Envoy mirror a configured
  percentage; this share is set by the load instead, and the Shadow test only
  needs a sample;
- a candidate that fails most of its mirrors (too slow for the objective) is sent
  only a sample, in proportion to its recent successes (``_failing_share``):
  its failures are evidence either way, and each failed mirror cost the
  frontend a queue, a batch, a call and a timeout (dropped as ``failing``);
- mirrored rows in flight are bounded (``shadow_max_inflight_rows``); past the
  bound, or when the candidate's queue could not drain in time, or no replica of
  it is up, the mirror is *dropped*, never queued, and counted by reason in
  ``/metrics`` (``clipper_frontend_shadow_dropped_rows_total``). A dropped mirror
  is no evidence either way: its query is simply not compared.

A mirror the candidate failed (a model error, or no answer within the app's
SLO) is evidence: the candidate would have answered that caller with a default,
so once labelled it counts as a full loss for the candidate.

The candidate's answers wait for their labels in a store bounded in bytes
(``shadow_max_bytes``, oldest forgotten first), as the feedback store does. A
label may also come first (a client that labels at once, a slow candidate): it
waits for the query's mirrors in flight and is scored as each lands.
Feedback by input is not compared: its rows are evaluated for the label, not
answered to a caller, so there is no caller-visible answer to compare with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clipper.common.errors import ClipperError, Overloaded, Unavailable
from clipper.frontend.admission import too_late
from clipper.frontend.feedback import Remembered, output_bytes
from clipper.frontend.queries import Answer
from clipper.frontend.records import primary
from clipper.frontend.routing.apps import AppRuntime
from clipper.frontend.routing.versions import VersionRuntime
from clipper.frontend.untracked import UntrackedFifo, groups

log = logging.getLogger(__name__)

ENTRY_OVERHEAD = 300
"""Bytes counted per kept answer besides its output row: the entry, its slot, the id."""

FAILED = None
"""What a mirror the candidate failed (an error, or the deadline) leaves as its answer."""

Pair = tuple[str, str, str, str]
"""(app, model, stable version, candidate version)."""


@dataclass(slots=True)
class PairCounts:
    """Labelled queries answered by both versions of one pair, cumulative."""

    wins: int = 0
    losses: int = 0
    ties: int = 0
    stable_loss: float = 0.0
    candidate_loss: float = 0.0

    def add(self, stable: float, candidate: float) -> None:
        if candidate < stable:
            self.wins += 1
        elif candidate > stable:
            self.losses += 1
        else:
            self.ties += 1
        self.stable_loss += stable
        self.candidate_loss += candidate


Kept = tuple[Pair, "np.ndarray | None", int]
"""The candidate's answer to one mirrored query: (pair, its output or ``FAILED``,
the bytes counted for it)."""

KEPT_WIDTH = 6
"""A ``Kept`` flattened, as the store holds it: app, model, stable version, candidate
version, output, bytes. A query's answers (one per shadow) are one flat tuple of
such groups, which the garbage collector stops tracking at once and never walks
(``clipper.frontend.untracked``). As a class instance per answer in a list per
query, a full store was tens of thousands of objects that each full collection
walked, a pause of tens of milliseconds in the event loop that every caller in
flight waited through: mirroring cost callers latency there."""


MIN_SHARE = 0.02
"""The least share of answered requests mirrored, however busy the frontend: the
Shadow comparison still gathers evidence, slowly."""
PROBE_S = 0.02
"""How often the busy probe looks at the event loop while mirroring is active."""
FAILURE_WEIGHT = 0.1
"""Weight of each landed chunk in a pair's failure rate (an EWMA over ~10 chunks)."""
IDLE_S = 5.0
"""The probe stops after this long without a request to mirror."""


class Credit:
    """Deterministic sampling: ``take(share)`` is true for exactly one call in
    ``1 / share``, with no random draw (the share may change between calls)."""

    __slots__ = ("credit",)

    def __init__(self) -> None:
        self.credit = 0.0

    def take(self, share: float) -> bool:
        self.credit += share
        if self.credit >= 1.0:
            self.credit -= 1.0
            return True
        return False


class MirrorShare:
    """The share of answered requests mirrored: all while the event loop has time to
    spare, cut by half per probe that finds it busy, grown back by a tenth per probe
    that does not (AIMD, as for a batch). A timer that should fire every ``PROBE_S``
    finds the loop busy when it

    * fires ``busy_lag_s`` late: callbacks were queued ahead of it for that long (the
      loop is backlogged, or the process waits for a core another holds); or
    * finds that the loop's thread ran on a core for ``busy_cpu`` or more of the
      period since the last probe: a loop full of callers' work, even one that
      keeps every timer on time, has no turn to spare for a mirror without making
      some caller wait for it (a closed loop of callers saturates it so).

    Taking is deterministic (a credit counter, no random draw): at share ``s``
    exactly one request in ``1/s`` is mirrored."""

    def __init__(self, busy_lag_s: float, busy_cpu: float = 1.0) -> None:
        self.busy_lag_s = busy_lag_s
        self.busy_cpu = busy_cpu
        self.share = 1.0
        self.cpu = 0.0
        """The loop thread's CPU share over the last probe period."""
        self._credit = Credit()
        self._due: float | None = None
        self._used = 0.0
        self._since = (0.0, 0.0)  # (loop time, thread CPU time) at the last probe

    def take(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether to mirror the request answered now."""
        if self.busy_lag_s <= 0:
            return True
        self._used = loop.time()
        if self._due is None:
            self._due = self._used + PROBE_S
            self._since = (self._used, time.thread_time())
            loop.call_at(self._due, self._probe, loop)
        return self._credit.take(self.share)

    def _probe(self, loop: asyncio.AbstractEventLoop) -> None:
        now, cpu = loop.time(), time.thread_time()
        lag = now - (self._due or now)
        since, cpu_since = self._since
        self.cpu = (cpu - cpu_since) / max(now - since, 1e-6)
        self._since = (now, cpu)
        if lag > self.busy_lag_s or self.cpu >= self.busy_cpu:
            self.share = max(MIN_SHARE, self.share / 2)
        else:
            self.share = min(1.0, self.share + 0.1)
        if now - self._used > IDLE_S:
            self._due = None  # nothing to mirror lately: stop probing until there is
            return
        self._due = now + PROBE_S
        loop.call_at(self._due, self._probe, loop)


@dataclass(slots=True)
class _Batch:
    """Rows waiting to go to one candidate of one app together: each request's picked
    rows with their query ids, in the order the requests were answered."""

    app: AppRuntime
    model: str
    stable: VersionRuntime
    shadow: VersionRuntime
    parts: list[tuple[np.ndarray, list[int]]] = field(default_factory=list)

    def pair(self) -> Pair:
        return (self.app.name, self.model, self.stable.version, self.shadow.version)


class ShadowMirror:
    """Every Shadow candidate's mirrored queries, kept answers and paired counts."""

    def __init__(
        self,
        max_inflight_rows: int,
        max_bytes: int,
        wait_s: float = 0.0,
        busy_lag_s: float = 0.0,
        busy_cpu: float = 1.0,
    ) -> None:
        self.max_inflight_rows = max_inflight_rows
        self.wait_s = wait_s
        self.share = MirrorShare(busy_lag_s, busy_cpu)
        self.max_bytes = max_bytes
        self.inflight_rows = 0
        self.mirrored: dict[Pair, int] = {}
        self.dropped: dict[tuple[Pair, str], int] = {}
        self.failed: dict[Pair, int] = {}
        self.pairs: dict[Pair, PairCounts] = {}
        self._kept = UntrackedFifo(max_bytes)
        """Each mirrored query's shadow answers (one per shadow), flattened ``Kept``s
        (``KEPT_WIDTH``), by query id (ids are unique across the process's apps; each
        answer names its app)."""
        self._awaited: dict[tuple[str, int], int] = {}
        """Mirrors of a query still in flight, by (app, query id)."""
        self._early: dict[tuple[str, int], tuple[AppRuntime, Remembered, Any]] = {}
        """Labels that arrived before every mirror of their query had landed: scored as
        each lands. Bounded by the mirrors in flight."""
        self._pending: dict[tuple[int, str, int], _Batch] = {}
        """Rows waiting to be mirrored, by (app, model, candidate); in flight already."""
        self._failure_rate: dict[Pair, float] = {}
        """Per pair, the share of recent mirrored chunks the candidate failed (EWMA)."""
        self._failure_credit: dict[Pair, Credit] = {}
        self.chunks: dict[Pair, int] = {}
        """Chunks of mirrored rows queued, by pair: ``mirrored`` / ``chunks`` is how many
        rows each mirror carried."""

    # --- mirroring ------------------------------------------------------------------

    def after(self, app: AppRuntime, rows: np.ndarray, answers: Sequence[Answer]) -> None:
        """Queue a request's rows for each candidate once its answers are built; they
        go with the other rows queued in the next ``wait_s`` (or turn of the loop)."""
        taken: bool | None = None
        for model in app.models.values():
            if not model.shadows:
                continue
            picked = [i for i, answer in enumerate(answers) if model.name in answer.models]
            if not picked:
                continue
            if taken is None:
                taken = self.share.take(asyncio.get_running_loop())
            part = (
                rows if len(picked) == len(rows) else rows[picked],
                [answers[i].query_id for i in picked],
            )
            for shadow in model.shadows:
                if taken:
                    self._queue(app, model.name, model.versions[0][0], shadow, part)
                else:
                    pair = (app.name, model.name, model.versions[0][0].version, shadow.version)
                    self._count_drop(pair, "busy", len(picked))

    def _queue(
        self,
        app: AppRuntime,
        model: str,
        stable: VersionRuntime,
        shadow: VersionRuntime,
        part: tuple[np.ndarray, list[int]],
    ) -> None:
        key = (id(app), model, id(shadow))
        batch = self._pending.get(key) or _Batch(app, model, stable, shadow)
        n = len(part[1])
        if self.inflight_rows + n > self.max_inflight_rows:
            self._count_drop(batch.pair(), "inflight", n)
            return
        if not self._pending:
            loop = asyncio.get_running_loop()
            if self.wait_s > 0:
                loop.call_later(self.wait_s, self._flush)
            else:
                loop.call_soon(self._flush)
        self._pending[key] = batch
        batch.parts.append(part)
        self.inflight_rows += n
        for query_id in part[1]:  # a label that comes first waits for the mirror
            awaited = (app.name, query_id)
            self._awaited[awaited] = self._awaited.get(awaited, 0) + 1

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for batch in pending.values():
            first = batch.parts[0][0]
            if all(
                r.dtype == first.dtype and r.shape[1:] == first.shape[1:] for r, _ in batch.parts
            ):
                rows = (
                    first if len(batch.parts) == 1 else np.concatenate([r for r, _ in batch.parts])
                )
                chunks = [(rows, [i for _, ids in batch.parts for i in ids])]
            else:  # rows the candidate must see as each caller sent them: one chunk each
                chunks = batch.parts
            for rows, ids in chunks:
                try:
                    self._submit(batch, rows, ids)
                except Exception:  # a mirror must never break serving: say so, carry on
                    log.exception("app %s: mirroring to a shadow version failed", batch.app.name)
                    self._give_up(batch.pair(), ids)

    def _submit(self, batch: _Batch, rows: np.ndarray, ids: list[int]) -> None:
        pair = batch.pair()
        now = asyncio.get_running_loop().time()
        deadline = now + batch.app.slo_s
        reason = "late" if too_late(batch.shadow, deadline, now) is not None else None
        if reason is None and not self._failing_share(pair):
            reason = "failing"
        if reason is None:
            try:
                future = batch.shadow.submit(rows, deadline, now)
            except Overloaded:
                reason = "queue_full"
            except Unavailable:
                reason = "unavailable"
        if reason is not None:
            self._count_drop(pair, reason, len(ids))
            self._give_up(pair, ids)
            return
        self.mirrored[pair] = self.mirrored.get(pair, 0) + len(ids)
        self.chunks[pair] = self.chunks.get(pair, 0) + 1
        future.add_done_callback(partial(self._landed, pair, ids))

    def _failing_share(self, pair: Pair) -> bool:
        """Whether to send this chunk, given how many of the candidate's recent mirrors
        failed: a chunk in ``1 / (1 - failure rate)`` goes (at least ``MIN_SHARE``).
        A candidate too slow for the objective fails nearly every mirror it is sent,
        after the frontend has queued, batched, sent and timed out each one; a sample
        of them is the same evidence (each failure scores as a full loss) for a
        fraction of that work."""
        share = max(MIN_SHARE, 1.0 - self._failure_rate.get(pair, 0.0))
        credit = self._failure_credit.get(pair)
        if credit is None:
            credit = self._failure_credit[pair] = Credit()
        return credit.take(share)

    def _count_drop(self, pair: Pair, reason: str, n: int) -> None:
        self.dropped[(pair, reason)] = self.dropped.get((pair, reason), 0) + n

    def _give_up(self, pair: Pair, ids: list[int]) -> None:
        """Mirrors that will not land: out of flight, and their labels wait no more."""
        self.inflight_rows -= len(ids)
        for query_id in ids:
            self._unawait((pair[0], query_id))

    def _unawait(self, key: tuple[str, int]) -> None:
        left = self._awaited.pop(key, 1) - 1
        if left > 0:
            self._awaited[key] = left
        else:
            self._early.pop(key, None)

    def _landed(self, pair: Pair, ids: list[int], future: asyncio.Future[np.ndarray]) -> None:
        self.inflight_rows -= len(ids)
        outputs = None
        if not future.cancelled() and future.exception() is None:
            outputs = future.result()
        else:
            self.failed[pair] = self.failed.get(pair, 0) + len(ids)
        rate = self._failure_rate.get(pair, 0.0)
        self._failure_rate[pair] = (1 - FAILURE_WEIGHT) * rate + FAILURE_WEIGHT * (outputs is None)
        for position, query_id in enumerate(ids):
            output = None if outputs is None else np.array(outputs[position], copy=True)
            key = (pair[0], query_id)
            early = self._early.get(key)
            if early is not None:  # its label came first: score now, keep nothing
                self._score(early[0], (pair, output, 0), early[1], early[2])
            else:
                self._keep(pair, query_id, output)
            self._unawait(key)

    def _keep(self, pair: Pair, query_id: int, output: np.ndarray | None) -> None:
        nbytes = ENTRY_OVERHEAD + (0 if output is None else output_bytes(output))
        kept = (*(self._kept.get(query_id) or ()), *pair, output, nbytes)
        self._kept.put(query_id, kept, sum(kept[KEPT_WIDTH - 1 :: KEPT_WIDTH]))

    @property
    def bytes(self) -> int:
        return self._kept.bytes

    @property
    def evictions(self) -> int:
        """Queries whose kept answers were forgotten to stay within the bound."""
        return self._kept.evictions

    # --- scoring on labels ----------------------------------------------------------

    def score(self, app: AppRuntime, query_id: int, entry: Remembered, label: Any) -> None:
        """Compare the stable version with each shadow on a label for ``query_id``, if
        it was mirrored."""
        key = (app.name, query_id)
        for *pair, output, nbytes in groups(self._kept.pop(query_id) or (), KEPT_WIDTH):
            if pair[0] == app.name:
                self._score(app, (tuple(pair), output, nbytes), entry, label)
        if key in self._awaited:  # a mirror still in flight: score it when it lands
            self._early[key] = (app, entry, label)

    def _score(self, app: AppRuntime, kept: Kept, entry: Remembered, label: Any) -> None:
        pair, output, _ = kept
        stable_output = entry.outputs.get(pair[1])
        if stable_output is None:
            return
        stable = app.policy.loss(primary(stable_output), label)
        candidate = 1.0
        if output is not None:
            try:
                candidate = app.policy.loss(primary(output), label)
            except ClipperError:  # an output the label cannot be compared with is wrong
                candidate = 1.0
        counts = self.pairs.get(pair)
        if counts is None:
            counts = self.pairs[pair] = PairCounts()
        counts.add(stable, candidate)

    # --- reporting ------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        """Every pair's counts, for the stats document a controller reads."""
        keys = {*self.pairs, *self.mirrored, *(pair for pair, _ in self.dropped)}
        out = []
        for pair in sorted(keys):
            counts = self.pairs.get(pair, PairCounts())
            dropped = {r: n for (p, r), n in self.dropped.items() if p == pair}
            app, model, stable, candidate = pair
            out.append(
                {
                    "app": app,
                    "model": model,
                    "stable": stable,
                    "candidate": candidate,
                    "mirrored": self.mirrored.get(pair, 0),
                    "failed": self.failed.get(pair, 0),
                    "dropped": dropped,
                    "wins": counts.wins,
                    "losses": counts.losses,
                    "ties": counts.ties,
                    "stable_loss": counts.stable_loss,
                    "candidate_loss": counts.candidate_loss,
                }
            )
        return out


class ShadowCollector(Collector):
    """The mirror's counters and bounds as Prometheus metrics, read at scrape time."""

    def __init__(self, mirror: ShadowMirror) -> None:
        self.mirror = mirror

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Any:
        m, prefix = self.mirror, "clipper_frontend_shadow"
        labels = ["app", "model", "stable", "candidate"]
        mirrored = CounterMetricFamily(
            f"{prefix}_mirrored_rows", "Rows mirrored to a Shadow candidate.", labels=labels
        )
        dropped = CounterMetricFamily(
            f"{prefix}_dropped_rows",
            "Rows not mirrored to a Shadow candidate, by reason (inflight: the bound on"
            " mirrored rows in flight; late/queue_full: the candidate's queue; unavailable;"
            " busy: the frontend's event loop was busy; failing: a sample only goes to"
            " a candidate that fails most mirrors).",
            labels=[*labels, "reason"],
        )
        failed = CounterMetricFamily(
            f"{prefix}_failed_rows",
            "Mirrored rows the candidate answered with an error or not within the SLO.",
            labels=labels,
        )
        chunks = CounterMetricFamily(
            f"{prefix}_mirror_chunks",
            "Chunks of mirrored rows queued to a Shadow candidate: the requests answered in"
            " one turn of the event loop go as one.",
            labels=labels,
        )
        compared = CounterMetricFamily(
            f"{prefix}_compared_labels",
            "Labels that scored both versions, by outcome for the candidate (win, loss, tie).",
            labels=[*labels, "outcome"],
        )
        for pair, n in m.mirrored.items():
            mirrored.add_metric(list(pair), n)
        for (pair, reason), n in m.dropped.items():
            dropped.add_metric([*pair, reason], n)
        for pair, n in m.failed.items():
            failed.add_metric(list(pair), n)
        for pair, n in m.chunks.items():
            chunks.add_metric(list(pair), n)
        for pair, c in m.pairs.items():
            for outcome, n in (("win", c.wins), ("loss", c.losses), ("tie", c.ties)):
                compared.add_metric([*pair, outcome], n)
        yield from (mirrored, dropped, failed, chunks, compared)
        for name, help_text, value in (
            (
                "inflight_rows",
                "Rows queued for or sent to Shadow candidates, not yet answered.",
                m.inflight_rows,
            ),
            ("max_inflight_rows", "The bound on mirrored rows in flight.", m.max_inflight_rows),
            (
                "mirror_share",
                "The share of answered requests mirrored: 1 unless the event loop is busy.",
                m.share.share,
            ),
            (
                "loop_cpu_share",
                "The event loop thread's CPU share over the busy probe's last period (while"
                " mirroring; the share is cut at --shadow-busy-cpu-share).",
                m.share.cpu,
            ),
            ("store_bytes", "Bytes of candidates' answers awaiting labels.", m.bytes),
            ("store_max_bytes", "The byte bound of candidates' kept answers.", m.max_bytes),
        ):
            gauge = GaugeMetricFamily(f"{prefix}_{name}", help_text)
            gauge.add_metric([], value)
            yield gauge
        evictions = CounterMetricFamily(
            f"{prefix}_store_evictions",
            "Mirrored queries whose candidates' answers were forgotten to stay within the bound.",
        )
        evictions.add_metric([], m.evictions)
        yield evictions
