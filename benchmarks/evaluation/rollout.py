"""Version rollouts under load: what a caller sees while a canary or a shadow runs.

``clipper run`` (local mode: the same rollout state machine as the operator)
serves one app over a ModelDeployment at v1 while a bounded, timed load runs
(``timeline.TimedLoad``); then ``clipper apply`` changes the version to v2, and
the run lasts until v2 is the stable version with all the traffic.

* **Canary**: two identical identity models (a swap should cost a caller
  nothing), 10% then 50% steps.
* **Shadow**: the strategy judges v2 on labels, so v1 and v2 must differ and the
  callers must label their queries: v1 is the weak digits forest and v2 the
  strong one (``clipper.testing.graded_models.train_forests``), and the load
  sends each query's true label by query id. v2 answers no caller while it is
  shadowed; the sequential test promotes it once the labels show it is better.
  The result records the verdict as the run's status gave it (the
  ``ShadowPromoted`` evidence: the labelled pairs it took), the labels the
  callers sent meanwhile, and the rows mirrored to v2 and dropped.

The timeline, in windows of half a second: the caller's p99, errors (non-200 or
a default answer), v2's share of the queries answered, the rows mirrored to the
candidate and the labels sent; ``phases`` the caller's p99 before, during and
after the rollout.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from clipper.common.api import ShadowSpec
from clipper.common.api.modeldeployment import RolloutSpec
from clipper.common.rollout.shadow import sequential_test
from clipper.local.fleet import INTERVAL_S as FLEET_READ_S
from clipper.testing.graded_models import train_forests
from clipper.testing.local import (
    LocalRun,
    clipper_app,
    deployment,
    model_deployment,
    traffic,
    write_manifests,
)
from clipper.testing.models import digits, digits_batch
from clipper.testing.processes import free_port

from .record import Options
from .timeline import WINDOW_S, Counters, TimedLoad, grown, phases, read_counters, timeline

IDENTITY = "clipper.testing.functions:identity"
DEADLINE_S = 120.0
"""The most a rollout may take, from the apply to v2 stable, before the run fails."""
SLO_MS = 1000
AFTER_S = SLO_MS / 1000 + 2 * WINDOW_S
"""The least the load runs on after v2 is stable: a v1 answer still in flight may land
up to the objective later, so only then do whole windows of v2 alone follow."""
Status = dict[str, Any]
PROMOTED = "ShadowPromoted"


@dataclass
class Served:
    """What a run serves: the app, its model's manifest per version, the callers' rows."""

    app: str
    model: str
    manifest: Callable[[str, dict[str, Any]], dict[str, Any]]
    rows: np.ndarray
    labels: np.ndarray | None = None


def echo(folder: Path) -> Served:
    """Identity at both versions: a swap that should cost a caller nothing."""

    def manifest(version: str, rollout: dict[str, Any]) -> dict[str, Any]:
        return model_deployment("echo", version, "python", IDENTITY, threads=1, rollout=rollout)

    return Served("echo", "echo", manifest, digits_batch(16))


def forests(folder: Path) -> Served:
    """The digits forest: v1 weak, v2 strong; the callers know every row's label."""
    paths = train_forests(folder)

    def manifest(version: str, rollout: dict[str, Any]) -> dict[str, Any]:
        return model_deployment(
            "digits-forest", version, "sklearn", str(paths[version]), threads=1, rollout=rollout
        )

    pixels, labels = digits()
    return Served("digits", "digits-forest", manifest, pixels, labels)


def strategies() -> list[str]:
    annotation = RolloutSpec.model_fields["strategy"].annotation
    return list(typing.get_args(annotation))


def rollout_spec(strategy: str, quick: bool) -> dict[str, Any]:
    pause = 1 if quick else 4
    spec: dict[str, Any] = {"drainSeconds": 1, "progressDeadlineSeconds": 120}
    if strategy == "Canary":
        steps = [{"weight": 10, "pauseSeconds": pause}, {"weight": 50, "pauseSeconds": pause}]
        spec.update(strategy="Canary", steps=steps)
    else:
        spec.update(strategy=strategy)
    return spec


def swap(strategy: str, options: Options, serve: Callable[[Path], Served]) -> dict[str, Any]:
    """One run: v1 under load, apply v2 with ``strategy``, until v2 is stable."""
    rollout = rollout_spec(strategy, options.quick)
    settle = 1.0 if options.quick else 3.0
    with tempfile.TemporaryDirectory(prefix="clipper-eval-rollout-") as tmp:
        folder = Path(tmp)
        served = serve(folder)
        service = {"httpPort": free_port(), "grpcPort": free_port()}
        app = clipper_app(
            served.app,
            [served.model],
            latencySLOMillis=SLO_MS,
            cache={"enabled": False},
            frontend={"service": service},
        )
        write_manifests(folder / "app.yaml", app)
        model = write_manifests(folder / "model.yaml", served.manifest("v1", rollout))
        with LocalRun([folder / "app.yaml", model], folder / "cache") as run:
            run.wait_serving()
            load = TimedLoad(run.url, served.app, served.rows, served.labels).start()
            watch = Watch(run, load, served)
            try:
                watch.sleep(settle)
                write_manifests(model, served.manifest("v2", rollout))
                applied = run.apply(model)
                watch.mark(f"apply v2 ({strategy})")
                watch.deadline = time.monotonic() + DEADLINE_S
                if applied.returncode != 0:
                    raise RuntimeError(f"apply failed: {applied.stderr[-500:]}")
                if strategy == "Shadow":
                    watch.until(lambda s: _shadowing(s, served.model), "v2 shadowing")
                    watch.until(lambda s: _promoted(s, served.model), "v2 promoted")
                final = watch.until(lambda s: _stable(s, served.model), "v2 stable")
                if strategy == "Shadow":  # when the run itself started and ended the test
                    watch.retime(final, {"v2 shadowing": "ShadowStarted", "v2 promoted": PROMOTED})
                watch.sleep(max(settle, AFTER_S))
            finally:
                samples = load.stop()
    return watch.result(strategy, rollout, samples, final)


class Watch:
    """Reads the frontend's counters every ``WINDOW_S`` and marks the rollout's events,
    in seconds since the load started."""

    def __init__(self, run: LocalRun, load: TimedLoad, served: Served) -> None:
        self.run, self.load, self.served = run, load, served
        self.reads: list[tuple[float, Counters]] = []
        self.events: list[tuple[float, str]] = []
        self.deadline = math.inf
        """When ``until`` gives up (``DEADLINE_S`` after the apply)."""

    def mark(self, event: str) -> None:
        self.events.append((self.load.now(), event))

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._read()

    def until(self, check: Callable[[Status], bool], event: str) -> Status:
        """Reads until the run's status passes ``check``; then ``event`` is marked."""
        while time.monotonic() < self.deadline:
            status = self.run.status()
            if check(status):
                self.mark(event)
                return status
            self._read()
        raise TimeoutError(f"no '{event}' within {DEADLINE_S:.0f} s of the apply")

    def retime(self, status: Status, reasons: dict[str, str]) -> None:
        """Mark each of these events when the run's Event of that reason says it
        happened, not when a status read first showed it (up to a read later)."""
        for i, (_, event) in enumerate(self.events):
            if event in reasons:
                self.events[i] = (self._when(status, reasons[event]), event)
        self.events.sort()

    def _when(self, status: Status, reason: str) -> float:
        found = [e["time"] for e in status.get("events", []) if e["reason"] == reason]
        if not found:
            reasons = [e["reason"] for e in status.get("events", [])]
            raise RuntimeError(f"no {reason} event in the run's status: {reasons}")
        return datetime.fromisoformat(found[-1]).timestamp() - self.load.wall0

    def _read(self) -> None:
        counters = read_counters(self.run.url, self.served.app, self.served.model)
        self.reads.append((self.load.now(), counters))
        time.sleep(WINDOW_S)

    def result(
        self, strategy: str, rollout: dict[str, Any], samples: list[Any], final: Status
    ) -> dict[str, Any]:
        at = {e.split(" (")[0]: t for t, e in self.events}
        apply, stable = at["apply v2"], at["v2 stable"]
        spans = {"before": (0.0, apply), "during": (apply, stable), "after": (stable, math.inf)}
        if strategy == "Shadow":  # v2 starting, then shadowed: its cost to the callers
            spans["shadowed"] = (at["v2 shadowing"], at["v2 promoted"])
        body: dict[str, Any] = {
            "strategy": strategy,
            "rollout": rollout,
            "events": self.events,
            "timeline": timeline(samples, self.reads, self.load.labelled),
            "phases": phases(samples, spans),
            "counted_during": grown(self.reads, apply, stable),
        }
        if strategy == "Shadow":
            body["verdict"] = self._verdict(final, rollout, at["v2 shadowing"], at["v2 promoted"])
        return body

    def _verdict(
        self, final: Status, rollout: dict[str, Any], shadowing: float, promoted: float
    ) -> dict[str, Any]:
        """The promotion as the run's status gave it, beside what the callers did while
        v2 was shadowed."""
        events = [e["message"] for e in final["events"] if e["reason"] == PROMOTED]
        labels = [ok for t, ok in self.load.labelled if shadowing <= t < promoted]
        test = sequential_test(ShadowSpec.model_validate(rollout.get("shadow") or {}))
        return {
            "evidence": events[-1],
            **evidence_numbers(events[-1]),
            "min_samples": test.min_samples,
            "net_wins_needed": math.ceil(test.upper / test.step),
            "counts_read_every_s": FLEET_READ_S,
            "seconds": round(promoted - shadowing, 2),
            "labels_sent": sum(labels),
            "labels_refused": len(labels) - sum(labels),
            "counted_shadowed": grown(self.reads, shadowing, promoted),
        }


EVIDENCE = re.compile(
    r"n=(?P<pairs>\d+) labelled pairs: candidate better (?P<wins>\d+), worse (?P<losses>\d+),"
    r" tied (?P<ties>\d+).*SPRT log-ratio (?P<log_ratio>-?[\d.]+) \(promote at (?P<upper>[\d.]+)"
)


def evidence_numbers(message: str) -> dict[str, float]:
    """The labelled pairs, wins, losses, ties and log-ratios of a Shadow verdict's
    evidence (``clipper.common.rollout.sequential.Decision.evidence``)."""
    found = EVIDENCE.search(message)
    if found is None:
        raise RuntimeError(f"a {PROMOTED} event without its evidence: {message!r}")
    return {k: float(v) if "." in v else int(v) for k, v in found.groupdict().items()}


def _shadowing(status: Status, model: str) -> bool:
    shadow = deployment(status, model)["status"].get("shadowVersion")
    return shadow == "v2" or _promoted(status, model)


def _promoted(status: Status, model: str) -> bool:
    """v2 is the stable version (v1 may still drain)."""
    return bool(deployment(status, model)["status"].get("stableVersion") == "v2")


def _stable(status: Status, model: str) -> bool:
    stable = deployment(status, model)["status"].get("stableVersion")
    return bool(stable == "v2" and traffic(status, model) == {"v2": 100})


def run(options: Options) -> dict[str, Any]:
    known = strategies()
    runs = [swap("Canary", options, echo)]
    notes = []
    if "Shadow" in known:
        try:
            runs.append(swap("Shadow", options, forests))
        except (RuntimeError, TimeoutError) as exc:
            print(f"   rollout: the Shadow promotion failed: {exc}", flush=True)
            notes.append(f"Shadow promotion failed: {exc}")
    else:
        notes.append(
            "Shadow promotion skipped: this build's RolloutSpec has no Shadow strategy "
            f"(strategies: {', '.join(known)}); the harness runs it once the strategy exists."
        )
    return {"runs": runs, "strategies": known, "notes": notes}
