"""``clipper status``: what a run serves, as JSON (the control API) and as tables.

The JSON is built in the run from the objects' statuses -- the same
``ModelDeploymentStatus`` the rollout state machine writes and the same
``ClipperAppStatus`` the operator would (``clipper.common.app_status``) -- plus the
processes and the frontend's selection weights (read from its ``/metrics``, so
they are what the frontend really uses). ``render`` turns it into the terminal
view.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from clipper.common import api
from clipper.common.tasks import TaskRegistry
from clipper.local.replica import ModelReplica
from clipper.local.runner import EventRecord

WEIGHT_METRIC = "clipper_frontend_selection_weight"
UP_METRIC = "clipper_frontend_replica_up"


def selection_weights(metrics_text: str) -> dict[str, dict[str, float]]:
    """``{app: {model: weight}}`` from a frontend's Prometheus exposition."""
    weights: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != WEIGHT_METRIC:
            continue
        for sample in family.samples:
            app, model = sample.labels.get("app", ""), sample.labels.get("model", "")
            weights.setdefault(app, {})[model] = float(sample.value)
    return weights


def replicas_up(metrics_text: str) -> set[tuple[str, str, str]]:
    """``(model, version, address)`` of every replica the frontend has up."""
    return {
        (sample.labels["model"], sample.labels["version"], sample.labels["replica"])
        for family in text_string_to_metric_families(metrics_text)
        if family.name == UP_METRIC
        for sample in family.samples
        if sample.value == 1
    }


def replica_state(replica: ModelReplica) -> str:
    if replica.exited:
        return "exited"
    if replica.retiring:
        return "stopping"
    return "ready" if replica.ready else "starting"


def replica_entry(replica: ModelReplica) -> dict[str, Any]:
    return {
        "name": replica.process.label,
        "pid": replica.process.pid,
        "address": replica.address,
        "state": replica_state(replica),
    }


def event_entry(event: EventRecord) -> dict[str, Any]:
    return {
        "time": event.time.isoformat(),
        "object": event.object,
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
    }


def app_entry(app: api.ClipperApp, weights: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        "name": app.metadata.name,
        "policy": app.spec.selection_policy.type,
        "latencySLOMillis": app.spec.latency_slo_millis,
        "weights": weights.get(app.metadata.name, {}),
        "status": app.status.to_dict(),
    }


def deployment_entry(deployment: api.ModelDeployment, source: str) -> dict[str, Any]:
    spec = deployment.spec
    return {
        "name": deployment.metadata.name,
        "modelName": deployment.model_name,
        "version": spec.version,
        "framework": spec.framework,
        "replicas": spec.replicas,
        "strategy": spec.rollout.strategy,
        "generation": deployment.metadata.generation,
        "source": source,
        "status": deployment.status.to_dict(),
    }


def tasks_entry(tasks: TaskRegistry) -> dict[str, Any]:
    """The run's background tasks that ever died: crashes per task, and those dead
    for good (none of local mode's are left dead: each is restarted)."""
    return {"crashes": dict(tasks.crashes), "failures": tasks.failures}


# --- the terminal view ------------------------------------------------------------------


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _apps(status: dict[str, Any]) -> list[str]:
    rows = [["APP", "READY", "MODELS", "POLICY", "SLO", "MODEL", "WEIGHT"]]
    for app in status["apps"]:
        ready = next(
            (c["status"] for c in app["status"].get("conditions", []) if c["type"] == "Ready"),
            "Unknown",
        )
        first = [app["name"], ready, app["status"].get("readyModels", "-"), app["policy"]]
        first.append(f"{app['latencySLOMillis']}ms")
        models = app["status"].get("models", []) or [{"name": "-"}]
        for index, model in enumerate(models):
            weight = app["weights"].get(model.get("modelName") or model["name"])
            cells = first if index == 0 else [""] * 5
            rows.append([*cells, model["name"], "-" if weight is None else f"{weight:.3f}"])
    return _table(rows)


def _versions(status: dict[str, Any]) -> list[str]:
    rows = [["MODEL", "VERSION", "PHASE", "READY", "TRAFFIC", "MESSAGE"]]
    for deployment in status["deployments"]:
        st = deployment["status"]
        traffic = {t["version"]: t["weight"] for t in st.get("traffic", [])}
        versions = st.get("versions", []) or [
            {"version": deployment["version"], "phase": "Pending", "replicas": 0}
        ]
        for index, version in enumerate(versions):
            name = version["version"]
            marks = " (spec)" if name == deployment["version"] else ""
            ready = f"{version.get('readyReplicas', 0)}/{version.get('replicas', 0)}"
            message = version.get("message") or ""
            rows.append(
                [
                    deployment["name"] if index == 0 else "",
                    name + marks,
                    version["phase"],
                    ready,
                    f"{traffic.get(name, 0)}%",
                    message[:100],
                ]
            )
    return _table(rows)


def _analysis(status: dict[str, Any]) -> list[str]:
    """Each ModelDeployment's latest rollout analysis (a canary's gates, or a Shadow
    rollout's sequential test): samples, each version's loss and p99, the verdict
    (``status.analysis``; the same columns ``kubectl get mdep`` shows)."""
    rows = [["MODEL", "CANDIDATE", "STEP", "SAMPLES", "LOSS", "P99", "VERDICT", "MESSAGE"]]
    for deployment in status["deployments"]:
        found = deployment["status"].get("analysis")
        if not found:
            continue
        p99s = [
            f"{v['version']}={v['p99Millis']:g}ms"
            for v in found.get("versions", [])
            if v.get("p99Millis") is not None
        ]
        step = found.get("step")
        rows.append(
            [
                deployment["name"],
                found["version"],
                "-" if step is None else str(step + 1),
                str(found.get("samples", 0)),
                found.get("lossSummary") or "-",
                " ".join(p99s) or "-",
                found["verdict"],
                (found.get("message") or "")[:100],
            ]
        )
    return _table(rows) if len(rows) > 1 else []


def _events(status: dict[str, Any], count: int = 8) -> list[str]:
    lines = []
    for event in status["events"][-count:]:
        when = datetime.fromisoformat(event["time"]).astimezone().strftime("%H:%M:%S")
        lines.append(f"{when}  {event['object']}  {event['reason']}: {event['message']}")
    return lines


def render(status: dict[str, Any]) -> str:
    """The terminal view of a run's status."""
    front = status["frontend"]
    health = "ready" if front["ready"] else ("live, not ready" if front["live"] else "down")
    lines = [
        f"clipper run (pid {status['pid']}) serving {', '.join(status['manifests'])}",
        f"endpoint: REST {front['http']}  gRPC {front['grpc']}  ({health})",
        "",
        *_apps(status),
        "",
        *_versions(status),
    ]
    analysis = _analysis(status)
    if analysis:
        lines += ["", "rollout analysis (canary gates, shadow test):", *analysis]
    degraded = _degraded(status)
    if degraded:
        lines += ["", "degraded models (see their events):", *degraded]
    rejected = _rejected(status)
    if rejected:
        lines += ["", "rejected by the frontend (it serves the apps as before):", *rejected]
    events = _events(status)
    if events:
        lines += ["", "recent events:", *events]
    crashed = _crashed_tasks(status)
    if crashed:
        lines += ["", "background tasks that crashed (see the run's log for tracebacks):", *crashed]
    return "\n".join(lines)


def _degraded(status: dict[str, Any]) -> list[str]:
    """A ModelDeployment's Degraded condition while True: a failed rollout, a refused spec."""
    return [
        f"  {deployment['name']}: {c['reason']}: {c['message']}"
        for deployment in status["deployments"]
        for c in deployment["status"].get("conditions", [])
        if c["type"] == "Degraded" and c["status"] == "True"
    ]


def _rejected(status: dict[str, Any]) -> list[str]:
    return [
        f"  {app['name']}: {c['message']}"
        for app in status["apps"]
        for c in app["status"].get("conditions", [])
        if c["type"] == "RoutingRejected" and c["status"] == "True"
    ]


def _crashed_tasks(status: dict[str, Any]) -> list[str]:
    tasks = status.get("tasks", {})
    failures = tasks.get("failures", {})
    return [
        f"  {name}: {count} crash{'es' if count != 1 else ''}"
        + (f", dead: {failures[name]}" if name in failures else ", restarted")
        for name, count in sorted(tasks.get("crashes", {}).items())
    ]
