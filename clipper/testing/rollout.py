"""Drive the pure rollout state machine step by step, as a controller does.

Shared by the tests of the machine, its conditions and its immutability rule: time
is a parameter, readiness an observation set by hand, and the status round-trips
through JSON between steps (as it does through the API server), so "all state
lives in status" is exercised on every step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from clipper.common import api
from clipper.common.rollout import Plan, VersionObservation, reconcile
from clipper.common.rollout.analysis import Fleet

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def make_spec(version: str = "v1", **rollout: Any) -> api.ModelDeploymentSpec:
    """An sklearn spec of ``version``; ``replicas`` and ``modelUri`` may be given too."""
    extra = {k: rollout.pop(k) for k in ("replicas", "modelUri") if k in rollout}
    return api.ModelDeploymentSpec.model_validate(
        {
            "version": version,
            "framework": "sklearn",
            "modelUri": extra.get("modelUri", f"models/{version}.joblib"),
            "replicas": extra.get("replicas", 2),
            "rollout": {"drainSeconds": 10, **rollout},
        }
    )


def canary(version: str, **more: Any) -> api.ModelDeploymentSpec:
    """A Canary spec: 10% for 60 s, then 50% for 60 s."""
    steps = [{"weight": 10, "pauseSeconds": 60}, {"weight": 50, "pauseSeconds": 60}]
    return make_spec(version, strategy="Canary", steps=steps, **more)


@dataclass
class Controller:
    """Drives reconcile like a controller; observations are set by hand."""

    status: api.ModelDeploymentStatus = field(default_factory=api.ModelDeploymentStatus)
    observed: dict[str, VersionObservation] = field(default_factory=dict)
    now: datetime = T0
    generation: int = 1
    spec: api.ModelDeploymentSpec = field(default_factory=make_spec)
    last: Plan | None = None
    fleet: Fleet | None = None
    """What the frontends counted, as the controller last read it (None: not read)."""

    def apply(self, spec: api.ModelDeploymentSpec) -> None:
        """A spec change, as the API server counts it."""
        self.spec, self.generation = spec, self.generation + 1

    def ready(self, version: str, replicas: int = 2) -> None:
        self.observed[version] = VersionObservation(ready_replicas=replicas)

    def step(self, seconds: float = 0) -> Plan:
        self.now += timedelta(seconds=seconds)
        plan = reconcile(
            self.spec, self.status, self.observed, self.now, self.generation, self.fleet
        )
        # The status travels through JSON, as it does through the API server.
        self.status = api.ModelDeploymentStatus.model_validate(
            json.loads(json.dumps(plan.status.to_dict()))
        )
        self.last = plan
        return plan

    # --- reading the state ---

    def traffic(self) -> dict[str, int]:
        return {t.version: t.weight for t in self.status.traffic}

    def phase(self, version: str) -> str | None:
        entry = self.status.version(version)
        return entry.phase if entry else None

    def found(self, type_: str) -> api.Condition:
        found = api.find_condition(self.status.conditions, type_)
        assert found is not None, type_
        return found

    def condition(self, type_: str) -> tuple[str, str]:
        found = self.found(type_)
        return found.status, found.reason

    def message(self, type_: str) -> str:
        return self.found(type_).message

    def triple(self) -> tuple[str, str, str]:
        """(Ready, Progressing, Degraded) as "Status/Reason" each."""
        return tuple(  # type: ignore[return-value]
            "/".join(self.condition(kind)) for kind in ("Ready", "Progressing", "Degraded")
        )


def reasons(plan: Plan) -> list[str]:
    return [e.reason for e in plan.events]


def stable_on(c: Controller, version: str = "v1") -> Controller:
    """Bring ``c`` to ``version`` stable with all traffic (a first deploy)."""
    c.spec = make_spec(version) if c.spec.version != version else c.spec
    c.step()
    c.ready(version)
    c.step(1)
    assert c.traffic() == {version: 100}
    return c


def candidate_ready() -> Controller:
    """v1 stable under a canary spec, then v2 applied: its rollout started and all its
    replicas ready, but no traffic yet (the next step gives it the first weight)."""
    c = stable_on(Controller(spec=canary("v1")))
    c.apply(canary("v2"))
    c.step(1)  # the rollout starts
    c.ready("v2")
    return c
