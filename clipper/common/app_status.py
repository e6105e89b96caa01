"""A ClipperApp's status, computed from its ModelDeployments' statuses.

Pure, so the operator and ``clipper run`` (for ``clipper status``) report an app
the same way: a summary line per model, ``readyModels`` for ``kubectl get``, and
two conditions that answer different questions, as a model's do:

- Ready: the frontend is up and every model has a version that serves. A model
  whose rollout failed but that still serves on its stable version is serving:
  the app is Ready, and the model's summary (and Ready's message) say what failed.
- Degraded: some model serves nothing -- it is missing, lost its last ready
  replica, or its first version failed. A model still starting its first version
  is not Degraded (it is Progressing; Ready says it does not serve yet), and a
  failed rollout beside a serving version is information, not degradation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from clipper.common import api


def _problem(status: api.ModelDeploymentStatus) -> str | None:
    """The model's Degraded condition as one line, if it is True."""
    degraded = api.find_condition(status.conditions, "Degraded")
    if degraded is None or degraded.status != "True":
        return None
    return f"{degraded.reason}: {degraded.message}"


def _summary(model: api.ModelDeployment | None, name: str) -> api.ModelSummary:
    if model is None:
        return api.ModelSummary(name=name, message="no such ModelDeployment")
    status = model.status
    serving = [t.version for t in status.traffic if t.weight > 0]
    ready = sum(v.ready_replicas for v in status.versions if v.version in serving)
    problem = _problem(status)
    message = None
    if ready > 0 and problem is not None:
        message = f"serves on {', '.join(serving)}; {problem}"
    elif problem is not None:
        message = f"serves nothing; {problem}"
    elif ready == 0:
        message = "no version serves yet"
    return api.ModelSummary(
        name=name,
        model_name=model.model_name,
        ready=ready > 0,
        traffic=status.traffic_summary,
        ready_replicas=ready,
        message=message,
    )


def _starting(model: api.ModelDeployment | None) -> bool:
    """Whether ``model`` is still on its first rollout, and it has not failed."""
    if model is None or model.status.stable_version is not None:
        return False
    return _problem(model.status) is None


def app_status(
    app: api.ClipperApp,
    deployments: Iterable[api.ModelDeployment],
    endpoint: api.Endpoint | None,
    frontend_ready: bool,
    now: datetime,
) -> api.ClipperAppStatus:
    """The new status of ``app``, keeping the conditions' transition times from the old one."""
    chosen = app.select_models(deployments)
    by_name = {m.metadata.name: m for m in chosen}
    names = app.spec.models if app.spec.models is not None else sorted(by_name)
    models = [_summary(by_name.get(name), name) for name in names]
    serving = sum(m.ready for m in models)
    status = api.ClipperAppStatus(
        observed_generation=app.metadata.generation,
        endpoint=endpoint,
        ready_models=f"{serving}/{len(models)}",
        models=models,
        conditions=[c.model_copy() for c in app.status.conditions],
    )
    notes = "; ".join(f"{m.name}: {m.message}" for m in models if m.message)
    gen = app.metadata.generation
    if not models:
        ready = (False, "NoModels", "the app's modelSelector selects no ModelDeployment")
    elif not frontend_ready:
        ready = (False, "FrontendNotReady", "the frontend is not ready")
    elif serving < len(models):
        ready = (False, "ModelsNotServing", f"{serving} of {len(models)} models serve; {notes}")
    else:
        ready = (
            True,
            "Serving",
            f"all {len(models)} models serve" + (f"; {notes}" if notes else ""),
        )
    api.set_condition(
        status.conditions, "Ready", "True" if ready[0] else "False", *ready[1:], now, gen
    )
    down = [m for m in models if not m.ready and not _starting(by_name.get(m.name))]
    if down:
        text = "; ".join(f"{m.name}: {m.message}" for m in down)
        api.set_condition(status.conditions, "Degraded", "True", "ModelNotServing", text, now, gen)
    else:
        api.set_condition(
            status.conditions,
            "Degraded",
            "False",
            "Healthy",
            "every model serves or is starting",
            now,
            gen,
        )
    return status
