"""The rollout state machine: one pure function from (spec, status, observations, now) to a plan.

Both controllers drive it the same way, in a loop: the operator from kopf handlers
and timers, local mode from its supervisor. All state lives in the status it
returns -- nothing in memory -- so a controller restarted mid-rollout resumes
correctly, and calling it again once its plan is applied changes nothing more
(no new events, the same status) until time passes or something is observed.

A version's life: Pending (starting) -> Progressing (a ready canary with part of
the traffic) -> Serving (stable) -> Draining (out of traffic, still up for
``drainSeconds``) -> Retained (scaled to zero, for an instant rollback; the newest
``retainVersions`` are kept, older ones deleted). A candidate that crashes, or is
not ready within ``progressDeadlineSeconds``, is Failed: with ``autoRollback`` the
traffic returns to the stable version and the candidate scales to zero, otherwise
the rollout pauses as it is. Either way the failure is remembered (its
``failedGeneration``) and not retried until the spec changes again. A failure first
seen once the deadline has passed counts as the deadline (its message appended):
the operator sets the same deadline on the Deployment, whose controller may report
it a moment before the operator's own timer does, and the reason must not depend
on which of the two clocks a reconcile happens to see first.

Deliberate choices: the candidate runs ``spec.replicas`` from the start, so a
promotion never waits for capacity; going back to a version that has been stable
before (``promotedAt``) skips the canary steps, as a rollback should be quick; a
first deploy has nothing to roll back to, so it keeps trying (Degraded) and
becomes stable whenever it gets ready. Versions are immutable (see
``immutable``): a spec that changes the template of a version that exists is
refused -- the machine carries on with what it was doing, changes nothing in
traffic or in the versions, and says why in ``Degraded`` and one Warning event.

Canary steps are judged (``analysis``): the controller passes every frontend's
per-version counters as a ``Fleet``; once the step's warm-up is over
(``warmupSeconds``, at most half its pause) they are stored as the step's
baseline in the status, and every reconcile after judges the candidate against
the stable version on what was counted since. The warm-up is there because a
step's first seconds measure the change, not the version: the candidate's new
replica answers its first queries on a cold channel, with batches sized for
other traffic, and on a busy node that alone failed the latency gate of a
healthy version. A failed gate is a reading, not yet a verdict: the step rolls
back (``AnalysisFailed``, like any failure) when its gates have failed at every
judgement for ``failureSeconds`` (``status.rollout.failingSince``); a passing
judgement clears it. Counting the time, not the judgements, keeps the machine
idempotent however often a controller calls it. A step ends on its pause as
before, judged or -- with too few samples, or no counters to read -- not (its
event says which); one whose gates fail when its pause ends waits for them to
pass (it advances) or to have failed long enough (it rolls back). While a step is analysed the
plan asks to be called again every ``analysis.intervalSeconds`` when the
controller reads counters (``fleet`` given, even one that reached no frontend:
it tries again then); a controller that passes none wakes for the pauses only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from clipper.common import api
from clipper.common.api import (
    Challenger,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RolloutStatus,
    TrafficWeight,
    VersionStatus,
    find_condition,
)
from clipper.common.rollout import analysis, conditions, immutable, shadow
from clipper.common.rollout.analysis import Fleet, Judgement
from clipper.common.rollout.plan import (
    Action,
    DeleteVersion,
    EnsureVersion,
    Event,
    Plan,
    ScaleVersion,
    VersionObservation,
)
from clipper.common.rollout.sequential import Decision, SequentialTest

ANALYSIS_FAILED = "AnalysisFailed"
"""The reason of a rollout failed by a gate of its canary step's analysis."""


def reconcile(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    observed: Mapping[str, VersionObservation],
    now: datetime,
    generation: int | None = None,
    fleet: Fleet | None = None,
) -> Plan:
    """The next plan for a ModelDeployment.

    ``observed`` has one entry per version that exists; ``generation`` is
    ``metadata.generation`` (local mode counts spec changes the same way), which
    tells a changed spec from an unchanged one after a failure. ``now`` must be
    timezone-aware. ``fleet``: what the app's frontends counted per version (None:
    not read, or unreadable), for the analysis of canary steps.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return _Reconcile(spec, status, observed, now, generation, fleet).run()


class _Reconcile:
    def __init__(
        self,
        spec: ModelDeploymentSpec,
        status: ModelDeploymentStatus,
        observed: Mapping[str, VersionObservation],
        now: datetime,
        generation: int | None,
        fleet: Fleet | None = None,
    ) -> None:
        self.spec, self.observed, self.now, self.gen = spec, observed, now, generation
        self.fleet = fleet
        self.st = status.model_copy(deep=True)
        self.template = spec.template()
        self.events: list[Event] = []
        self.deleted: list[str] = []
        self.wake: list[float] = []
        self.started: str | None = None
        """The version (re)started by this reconcile: what was observed of it predates
        the new template, so its readiness counts from the next observation on."""
        self.refused: str | None = None
        """Why the spec was refused (it changes an existing version), or None."""

    # --- the loop ------------------------------------------------------------------

    def run(self) -> Plan:
        self._observe()
        self._follow_spec()
        self._progress()
        self._challenge()
        self._retire()
        self._finish()
        return Plan(
            status=self.st,
            actions=self._actions(),
            events=tuple(self.events),
            requeue_after=max(0.0, min(self.wake)) if self.wake else None,
        )

    def _observe(self) -> None:
        self._count_ready()
        if self.st.version(self.st.stable_version) is None:
            self.st.stable_version = None
        if self.st.version(self.st.candidate_version) is None:
            self.st.candidate_version = None

    def _count_ready(self) -> None:
        for entry in self.st.versions:
            seen = self.observed.get(entry.version)
            entry.ready_replicas = seen.ready_replicas if seen else 0

    # --- helpers -------------------------------------------------------------------

    def _event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event("Warning" if warning else "Normal", reason, message))

    def _entry(self, version: str | None) -> VersionStatus:
        entry = self.st.version(version)
        assert entry is not None, version
        return entry

    def _ready(self, entry: VersionStatus) -> bool:
        seen = self.observed.get(entry.version)
        if entry.replicas == 0:
            return True
        return seen is not None and not seen.failing and seen.ready_replicas >= entry.replicas

    def _set_traffic(self, weights: dict[str | None, int]) -> None:
        self.st.traffic = [
            TrafficWeight(version=v, weight=w) for v, w in weights.items() if v and w > 0
        ]

    def _phase(self, entry: VersionStatus, phase: str, reason: str | None = None) -> None:
        if entry.phase != phase:
            entry.phase = phase  # type: ignore[assignment]
            entry.since = self.now
        entry.reason = reason
        if reason is None:
            entry.message = None

    def _changed_since_failure(self, entry: VersionStatus) -> bool:
        if self.gen is not None and entry.failed_generation is not None:
            return self.gen > entry.failed_generation
        return entry.template != self.template

    def _after(self, start: datetime | None, seconds: float) -> float:
        """Seconds from now until ``seconds`` after ``start`` (<= 0: due)."""
        start = start or self.now
        return (start + timedelta(seconds=seconds) - self.now).total_seconds()

    # --- following spec.version ------------------------------------------------------

    def _follow_spec(self) -> None:
        target = self.spec.version
        self.refused = immutable.refusal(self.st.version(target), self.template)
        if self.refused is not None:
            return
        if self._challenger(target) is not None:
            return  # keepBest: it runs, compared with the stable version; the test decides
        if target == self.st.candidate_version:
            self._update_candidate(self._entry(target))
        elif target == self.st.stable_version:
            if self.st.candidate_version:
                self._abandon(f"spec.version is back to {target}")
            self._update_stable(self._entry(target))
        else:
            entry = self.st.version(target)
            if self.st.candidate_version:
                self._abandon(f"spec.version is now {target}")
            remembered = entry is not None and entry.phase == "Failed"
            if not remembered or self._changed_since_failure(entry):  # type: ignore[arg-type]
                self._start(target)

    def _update_stable(self, entry: VersionStatus) -> None:
        if entry.replicas != self.spec.replicas:
            self._event(
                "Scaled", f"{entry.version}: {entry.replicas} -> {self.spec.replicas} replicas"
            )
            entry.replicas = self.spec.replicas

    def _update_candidate(self, entry: VersionStatus) -> None:
        if entry.phase == "Failed":
            if self._changed_since_failure(entry):
                self._start(entry.version, restart=True)
        elif entry.replicas != self.spec.replicas:
            self._event(
                "Scaled", f"{entry.version}: {entry.replicas} -> {self.spec.replicas} replicas"
            )
            entry.replicas = self.spec.replicas

    def _start(self, version: str, restart: bool = False) -> None:
        entry = self.st.version(version)
        if entry is None:
            entry = VersionStatus(
                version=version, phase="Pending", template=self.template, created_at=self.now
            )
            self.st.versions.append(entry)
        self._phase(entry, "Pending")
        entry.since = self.now
        entry.template, entry.replicas, entry.failed_generation = (
            self.template,
            self.spec.replicas,
            None,
        )
        stable = self.st.stable_version
        self._set_traffic({stable: 100})
        self.st.candidate_version = version
        self.st.rollout = RolloutStatus(started_at=self.now, waiting_since=self.now)
        self.st.analysis = None
        self.started = version
        self.wake.append(float(self.spec.rollout.progress_deadline_seconds))
        what = "restarted" if restart else "started"
        over = f" (stable: {stable}, strategy {self.spec.rollout.strategy})" if stable else ""
        self._event("RolloutStarted", f"rollout of {version} {what}{over}")

    def _abandon(self, why: str) -> None:
        version = self.st.candidate_version
        entry = self._entry(version)
        weight = self.st.weight(entry.version)
        self._set_traffic({self.st.stable_version: 100})
        self.st.candidate_version = None
        self.st.rollout = RolloutStatus()
        if weight > 0:
            self._phase(entry, "Draining")
        elif entry.phase == "Failed":
            self._delete(entry)
        else:
            self._retain(entry)
        self._event("RolloutAbandoned", f"stopped rolling out {version}: {why}")

    # --- progressing the candidate ---------------------------------------------------

    def _progress(self) -> None:
        entry = self.st.version(self.st.candidate_version)
        if entry is None or entry.version == self.started:
            return
        first_deploy = self.st.stable_version is None
        if entry.phase == "Failed":
            if first_deploy and self._ready(entry):
                self._promote(entry)
            return
        seen = self.observed.get(entry.version)
        if seen is not None and seen.failing and not self._deadline_passed():
            self._fail(entry, "VersionFailing", f"{entry.version} is failing: {seen.message}")
        elif not self._ready(entry):  # a failing version is never ready
            self._wait(entry)
        else:
            was_waiting = self.st.rollout.waiting_since is not None
            self.st.rollout.waiting_since = None
            strategy = self.spec.rollout.strategy
            if first_deploy or strategy == "Rolling" or entry.promoted_at is not None:
                self._promote(entry)
            elif strategy == "Shadow":
                self._shadow(entry)
            else:
                self._canary(entry, restart_pause=was_waiting)

    def _deadline_passed(self) -> bool:
        since = self.st.rollout.waiting_since
        deadline = self.spec.rollout.progress_deadline_seconds
        return since is not None and self._after(since, deadline) <= 0

    def _wait(self, entry: VersionStatus) -> None:
        rollout = self.st.rollout
        if rollout.waiting_since is None:
            rollout.waiting_since = self.now
        deadline = self.spec.rollout.progress_deadline_seconds
        left = self._after(rollout.waiting_since, deadline)
        if left <= 0:
            seen = self.observed.get(entry.version)
            cause = f": {seen.message}" if seen is not None and seen.message else ""
            self._fail(
                entry,
                "ProgressDeadlineExceeded",
                f"{entry.version} was not ready within {deadline}s"
                f" ({entry.ready_replicas}/{entry.replicas} replicas ready){cause}",
            )
        else:
            self.wake.append(left)

    def _canary(self, entry: VersionStatus, restart_pause: bool) -> None:
        steps = self.spec.rollout.steps or []
        rollout = self.st.rollout
        if rollout.step is None or rollout.step >= len(steps):
            if rollout.step is not None:  # the steps were shortened under us
                self._promote(entry)
                return
            self._enter_step(entry, 0)
            return
        if restart_pause:  # ready again: the step, its warm-up and its verdict start over
            rollout.step_started_at, rollout.failing_since = self.now, None
        judgement = self._analyse(entry, steps[rollout.step].pause_seconds)
        failing = judgement is not None and judgement.verdict == "Failed"
        if judgement is not None and failing:
            if rollout.failing_since is None:
                rollout.failing_since = self.now
            patience = self.spec.rollout.analysis.failure_seconds
            if self._after(rollout.failing_since, patience) <= 0:
                self._fail_analysis(entry, judgement)
                return
            self._failing(judgement, patience)
        elif judgement is not None and judgement.verdict == "Passing":
            rollout.failing_since = None
        left = self._after(rollout.step_started_at, steps[rollout.step].pause_seconds)
        if left > 0 or failing:
            if left > 0:
                self.wake.append(left)
            if self._analysing() and self.fleet is not None:
                self.wake.append(float(self.spec.rollout.analysis.interval_seconds))
            return
        verdict = self._step_verdict(judgement)
        if rollout.step + 1 < len(steps):
            self._enter_step(entry, rollout.step + 1, verdict)
        else:
            self._promote(entry, verdict)

    def _enter_step(self, entry: VersionStatus, index: int, verdict: str = "") -> None:
        steps = self.spec.rollout.steps or []
        weight = steps[index].weight
        rollout = self.st.rollout
        rollout.step, rollout.step_started_at = index, self.now
        rollout.baseline, rollout.baseline_at = self._baseline(), self.now
        rollout.failing_since = None
        self._set_traffic({self.st.stable_version: 100 - weight, entry.version: weight})
        self._phase(entry, "Progressing")
        self.wake.append(float(steps[index].pause_seconds))
        if self._analysing() and self.fleet is not None:
            self.wake.append(float(self.spec.rollout.analysis.interval_seconds))
        self._event(
            "CanaryStep",
            f"{entry.version} gets {weight}% of traffic (step {index + 1} of {len(steps)},"
            f" {steps[index].pause_seconds}s){verdict}",
        )

    # --- Shadow: mirrored queries, judged on labels --------------------------------

    def _shadow(self, entry: VersionStatus) -> None:
        spec = self.spec.rollout.shadow
        test = shadow.sequential_test(spec)
        fleet = self.fleet
        stable = self.st.stable_version or ""
        counts = fleet.paired_by_frontend(stable, entry.version) if fleet is not None else None
        state = self.st.rollout.shadow
        if entry.phase != "Shadowing" or state is None or state.stable != stable:
            self._phase(entry, "Shadowing")
            self.st.shadow_version = entry.version
            self.st.rollout.shadow = shadow.start(self.now, counts, stable)
            self.wake.append(shadow.POLL_S)
            self._event(
                "ShadowStarted",
                f"{entry.version} gets a mirrored copy of the queries to"
                f" {self.st.stable_version}; its answers are recorded, never returned;"
                f" {shadow.describe(test)}, for at most {spec.max_duration_seconds}s",
            )
            return
        left = shadow.seconds_left(spec, state, self.now)
        if fleet is None and left > 0:  # no frontend answered: nothing new to judge
            self.wake.append(min(shadow.POLL_S, left))
            return
        decision = shadow.judge(test, state, counts, self.now, spec)
        self.st.analysis = shadow.analysis_of(decision, test, stable, entry.version, self.now)
        if decision.verdict == "promote":
            self._event("ShadowPromoted", f"{entry.version} is better: {decision.evidence(test)}")
            self._promote(entry)
        elif decision.verdict == "reject":
            self._reject(
                entry,
                f"{entry.version} rejected ({decision.why}): {decision.evidence(test)}",
                shadow.INCONCLUSIVE if decision.inconclusive else shadow.REJECTED,
            )
        else:
            self.wake.append(min(shadow.POLL_S, left))

    def _reject(self, entry: VersionStatus, message: str, reason: str) -> None:
        """A shadow that lost, or never showed it is better: scaled to zero at once (it
        never answered a caller), and not retried until the spec changes."""
        self._phase(entry, "Failed", reason)
        entry.message, entry.failed_generation, entry.replicas = message, self.gen, 0
        self._set_traffic({self.st.stable_version: 100})
        self.st.candidate_version = None
        self.st.rollout = RolloutStatus()
        self._event(reason, message, warning=True)

    # --- analysis of canary steps ----------------------------------------------------

    def _analysing(self) -> bool:
        return self.spec.rollout.analysis.enabled and self.st.stable_version is not None

    def _baseline(self) -> list[api.FrontendCounters] | None:
        if not self._analysing() or self.fleet is None or not self.fleet.reports:
            return None
        return self.fleet.baseline([self.st.stable_version or "", self.st.candidate_version or ""])

    def _analyse(self, entry: VersionStatus, pause_seconds: float) -> Judgement | None:
        """Judge the step so far; None when there is nothing to judge it on."""
        if not self._analysing() or self.fleet is None or not self.fleet.reports:
            return None
        rollout = self.st.rollout
        warmup = min(float(self.spec.rollout.analysis.warmup_seconds), pause_seconds / 2)
        warm_from = (rollout.step_started_at or self.now) + timedelta(seconds=warmup)
        if self.now < warm_from:
            self.wake.append((warm_from - self.now).total_seconds())
            return self._waiting(entry, f"warming up: judged from {warmup:g}s into the step")
        read_at = rollout.baseline_at
        if rollout.baseline is None or read_at is None or read_at < warm_from:
            # No counters when the step began, or they include the warm-up: count from now.
            rollout.baseline, rollout.baseline_at = self._baseline(), self.now
            return self._waiting(entry, "counting from the end of the warm-up")
        stable = self.st.stable_version or ""
        deltas = self.fleet.since(rollout.baseline)
        spec = self.spec.rollout.analysis
        judgement = analysis.judge(spec, stable, entry.version, deltas, self.fleet.slo_ms)
        self.st.analysis = analysis.status_of(
            judgement, entry.version, rollout.step, deltas, [stable, entry.version], self.now
        )
        return judgement

    def _waiting(self, entry: VersionStatus, why: str) -> Judgement:
        self.st.analysis = api.AnalysisStatus(
            version=entry.version,
            step=self.st.rollout.step,
            verdict="Waiting",
            message=why,
            judged_at=self.now,
        )
        return Judgement("Waiting", 0, note=why)

    def _failing(self, judgement: Judgement, patience: int) -> None:
        """A failed gate, not yet for long enough: say so, and when it will roll back."""
        since = self.st.rollout.failing_since or self.now
        if self.st.analysis is not None:
            self.st.analysis.verdict = "Failing"
            self.st.analysis.message = (
                f"{judgement.message} (failing since {since.isoformat()}; rolled back"
                f" if it still fails {patience}s after)"
            )

    def _step_verdict(self, judgement: Judgement | None) -> str:
        """The end of a step's pause: what its analysis concluded, for the event."""
        if not self._analysing():
            return ""
        if judgement is not None and judgement.verdict == "Passing":
            if self.st.analysis is not None:
                self.st.analysis.verdict = "Passed"
            return f"; step {(self.st.rollout.step or 0) + 1} passed its analysis: {judgement.note}"
        why = judgement.note if judgement is not None else "no frontend's counters to read"
        self.st.analysis = self.st.analysis or api.AnalysisStatus(
            version=self.st.candidate_version or "", step=self.st.rollout.step, verdict="NotJudged"
        )
        self.st.analysis.verdict, self.st.analysis.message = "NotJudged", why
        self.st.analysis.judged_at = self.now
        return f"; step {(self.st.rollout.step or 0) + 1} was not judged ({why})"

    def _fail_analysis(self, entry: VersionStatus, judgement: Judgement) -> None:
        step = (self.st.rollout.step or 0) + 1
        self._fail(
            entry,
            ANALYSIS_FAILED,
            f"{entry.version} failed its analysis at canary step {step}: {judgement.message}",
        )

    def _promote(self, entry: VersionStatus, verdict: str = "") -> None:
        old = self.st.version(self.st.stable_version)
        self._phase(entry, "Serving")
        entry.promoted_at, entry.failed_generation = self.now, None
        self.st.stable_version, self.st.candidate_version = entry.version, None
        self.st.rollout = RolloutStatus()
        self._set_traffic({entry.version: 100})
        drains = ""
        self.st.challengers = [c for c in self.st.challengers if c.version != entry.version]
        if old is not None and self._keeping_best():
            self._add_challenger(old)
            drains = f"; {old.version} stays up as a challenger, compared in the shadow"
        elif old is not None:
            self._phase(old, "Draining")
            drains = f"; {old.version} drains for {self.spec.rollout.drain_seconds}s"
        self._event("Promoted", f"{entry.version} is stable and gets all traffic{drains}{verdict}")

    def _fail(self, entry: VersionStatus, reason: str, message: str) -> None:
        stable = self.st.stable_version
        self._phase(entry, "Failed", reason)
        entry.message, entry.failed_generation = message, self.gen
        if stable is None:
            self._event(reason, f"{message}; nothing to roll back to, still trying", warning=True)
        elif self.spec.rollout.auto_rollback:
            entry.replicas = 0
            self._set_traffic({stable: 100})
            self.st.candidate_version = None
            self.st.rollout = RolloutStatus()
            self._event("RolledBack", f"{message}; all traffic is back on {stable}", warning=True)
        else:
            self._event(
                "RolloutPaused",
                f"{message}; autoRollback is off, so traffic stays as it is until the spec changes",
                warning=True,
            )

    # --- keepBest: earlier versions challenge the stable one in the shadow -------------

    def _keeping_best(self) -> bool:
        rollout = self.spec.rollout
        return rollout.strategy == "Shadow" and rollout.keep_best >= 2

    def _challenger(self, version: str | None) -> Challenger | None:
        return next((c for c in self.st.challengers if c.version == version), None)

    def _add_challenger(self, entry: VersionStatus) -> None:
        self._phase(entry, "Shadowing")
        entry.replicas = self.spec.replicas
        self.st.challengers.append(Challenger(version=entry.version))
        room = self.spec.rollout.keep_best - 1  # the stable version is one of them
        while len(self.st.challengers) > room:
            oldest = self._entry(self.st.challengers.pop(0).version)
            self._retain(oldest)
            self._event("Retained", f"{oldest.version}: more than keepBest versions; retained")

    def _challenge(self) -> None:
        """Judge each challenger against the stable version: the better one serves."""
        if not self.st.challengers:
            return
        if not self._keeping_best():  # keepBest turned off: the challengers drain
            for challenger in self.st.challengers:
                self._phase(self._entry(challenger.version), "Draining")
            self.st.challengers = []
            return
        spec = self.spec.rollout.shadow
        test = shadow.sequential_test(spec)
        stable = self.st.stable_version or ""
        self.wake.append(shadow.POLL_S)
        for challenger in list(self.st.challengers):
            entry = self.st.version(challenger.version)
            if entry is None:
                self.st.challengers.remove(challenger)
                continue
            fleet = self.fleet
            counts = fleet.paired_by_frontend(stable, entry.version) if fleet is not None else None
            if challenger.shadow.stable != stable:
                challenger.shadow = shadow.start(self.now, counts, stable)
                continue
            if not self._ready(entry):
                continue
            if fleet is None and shadow.seconds_left(spec, challenger.shadow, self.now) > 0:
                continue
            decision = shadow.judge(test, challenger.shadow, counts, self.now, spec)
            self.st.analysis = shadow.analysis_of(decision, test, stable, entry.version, self.now)
            if decision.verdict == "promote":
                self._event(
                    "ShadowPromoted",
                    f"{entry.version} is better than {stable}: {decision.evidence(test)}",
                )
                self._promote(entry)
                return  # a new stable version: every comparison starts over
            if decision.verdict == "reject":
                self._drop_challenger(challenger, entry, decision, test)

    def _drop_challenger(
        self, challenger: Challenger, entry: VersionStatus, decision: Decision, test: SequentialTest
    ) -> None:
        self.st.challengers.remove(challenger)
        stable = self.st.stable_version
        if decision.inconclusive:
            reason = shadow.INCONCLUSIVE
            message = f"{entry.version} did not prove better than {stable} ({decision.why})"
        else:
            reason, message = shadow.REJECTED, f"{entry.version} is worse than {stable}"
        message = f"{message}: {decision.evidence(test)}"
        if entry.version == self.spec.version:  # not retried until the spec changes
            self._phase(entry, "Failed", reason)
            entry.message, entry.failed_generation, entry.replicas = message, self.gen, 0
        else:
            self._retain(entry)
        self._event(reason, f"{message}; scaled to zero")

    # --- retiring old versions -------------------------------------------------------

    def _retain(self, entry: VersionStatus) -> None:
        self._phase(entry, "Retained")
        entry.replicas = 0

    def _delete(self, entry: VersionStatus) -> None:
        self.st.versions.remove(entry)
        self.deleted.append(entry.version)
        self._event("VersionDeleted", f"{entry.version} deleted")

    def _retire(self) -> None:
        drain = self.spec.rollout.drain_seconds
        active = {self.spec.version, self.st.stable_version, self.st.candidate_version}
        for entry in list(self.st.versions):
            if entry.phase == "Draining":
                left = self._after(entry.since, drain)
                if left > 0:
                    self.wake.append(left)
                else:
                    self._retain(entry)
                    self._event("Retained", f"{entry.version} drained; scaled to zero and retained")
            elif entry.phase == "Failed" and entry.version not in active:
                self._delete(entry)
        retained = [e for e in self.st.versions if e.phase == "Retained"]
        retained.sort(key=lambda e: e.since or datetime.min.replace(tzinfo=self.now.tzinfo))
        extra = len(retained) - self.spec.rollout.retain_versions
        for entry in retained[: max(0, extra)]:
            self._delete(entry)

    # --- the result ------------------------------------------------------------------

    def _finish(self) -> None:
        self._count_ready()
        candidate = self.st.version(self.st.candidate_version)
        if candidate is None or candidate.phase != "Shadowing":
            self.st.shadow_version = None
        self.st.observed_generation = self.gen
        text = " ".join(f"{t.version}={t.weight}" for t in self.st.traffic)
        self.st.traffic_summary = text or None
        self._announce_refusal()
        conditions.update(self.st, self.spec.version, self.now, self.gen, self.refused)

    def _announce_refusal(self) -> None:
        """One Warning per refusal: none while the status already says the same."""
        if self.refused is None:
            return
        said = find_condition(self.st.conditions, "Degraded")
        if said is None or (said.reason, said.message) != (conditions.IMMUTABLE, self.refused):
            self._event(conditions.IMMUTABLE, self.refused, warning=True)

    def _actions(self) -> tuple[Action, ...]:
        actions: list[Action] = []
        for entry in self.st.versions:
            if entry.phase == "Retained" or (entry.phase == "Failed" and entry.replicas == 0):
                actions.append(ScaleVersion(entry.version, 0))
            else:
                actions.append(EnsureVersion(entry.version, entry.template, entry.replicas))
        known = {e.version for e in self.st.versions}
        gone = [v for v in self.observed if v not in known and v not in self.deleted]
        actions.extend(DeleteVersion(v) for v in sorted({*self.deleted, *gone}))
        return tuple(actions)
