"""Local mode with ``spec.state: {backend: redis, url}``: a restarted frontend keeps
what selection learned (the default, memory, starts afresh).

``clipper run`` serves one app of two digits classifiers with its state in a real
redis-server; labels move the weights; the frontend is killed (SIGKILL) and the
run restarts it; the new frontend's weights are the ones learned before.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

from clipper.testing.frontend import metric
from clipper.testing.local import LocalRun, clipper_app, model_deployment, write_manifests
from clipper.testing.models import DigitsModels, digits
from clipper.testing.processes import free_port, wait_for
from clipper.testing.redis_server import RedisServer
from clipper.testing.timeouts import scaled


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=scaled(30)) as answer:
        loaded: dict[str, Any] = json.loads(answer.read())
        return loaded


def weights(run: LocalRun) -> dict[str, float]:
    with urllib.request.urlopen(f"{run.url}/metrics", timeout=scaled(10)) as answer:
        text = answer.read().decode()
    models = ("digits-lr", "digits-forest")
    return {
        m: metric(text, "clipper_frontend_selection_weight", app="digits", model=m) for m in models
    }


def frontend_pid(run: LocalRun) -> int | None:
    found = [p for p in run.status()["processes"] if p["name"].startswith("frontend")]
    return found[0]["pid"] if found and found[0]["state"] == "ready" else None


def test_a_restarted_local_frontend_keeps_what_it_learned_in_redis(
    tmp_path: Path, digits_models: DigitsModels, redis: RedisServer
) -> None:
    service = {"httpPort": free_port(), "grpcPort": free_port()}
    state = {"backend": "redis", "url": redis.url}
    write_manifests(
        tmp_path / "apps.yaml",
        clipper_app(
            "digits",
            ["digits-lr", "digits-forest"],
            latencySLOMillis=2000,
            frontend={"service": service},
            state=state,
        ),
        model_deployment("digits-lr", "v1", "sklearn", str(digits_models.logistic_regression)),
        model_deployment("digits-forest", "v1", "sklearn", str(digits_models.random_forest)),
    )
    pixels, labels = digits()
    with LocalRun([tmp_path / "apps.yaml"], tmp_path / "cache") as run:
        run.wait_serving()
        for i in range(60):
            answer = post(f"{run.url}/digits/predict", {"input": pixels[i].tolist()})
            wrong = (int(labels[i]) + 1) % 10 if i % 2 else int(labels[i])  # a noisy teacher
            post(f"{run.url}/digits/feedback", {"query_id": answer["query_id"], "label": wrong})
        learned = weights(run)
        assert abs(learned["digits-lr"] - 0.5) > 1e-3, learned  # labels moved them
        victim = frontend_pid(run)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        run.wait_status(lambda s: frontend_pid_of(s) not in (None, victim), what="new frontend")
        wait_for(
            lambda: close(weights(run), learned),
            timeout=30,
            what=f"the learned weights {learned}, reloaded",
            seen=lambda: weights(run),
        )


def close(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(abs(a[m] - b[m]) < 1e-9 for m in b)


def frontend_pid_of(status: dict[str, Any]) -> int | None:
    found = [p for p in status["processes"] if p["name"].startswith("frontend")]
    return found[0]["pid"] if found and found[0]["state"] == "ready" else None


def state_condition(status: dict[str, Any]) -> dict[str, Any]:
    """The app's ``StateBackendReachable`` in ``clipper status`` ({} while unset)."""
    (app,) = status["apps"]
    conditions = app["status"].get("conditions", [])
    return next((c for c in conditions if c["type"] == "StateBackendReachable"), {})


def test_clipper_status_says_when_the_frontend_cannot_reach_redis(
    tmp_path: Path, digits_models: DigitsModels, redis: RedisServer
) -> None:
    """The condition the operator sets on a cluster, from the same reports (the run
    reads its frontend's ``/v1/stats/versions`` every second)."""
    service = {"httpPort": free_port(), "grpcPort": free_port()}
    write_manifests(
        tmp_path / "apps.yaml",
        clipper_app(
            "digits",
            ["digits-lr"],
            latencySLOMillis=2000,
            frontend={"service": service},
            state={"backend": "redis", "url": redis.url},
        ),
        model_deployment("digits-lr", "v1", "sklearn", str(digits_models.logistic_regression)),
    )
    with LocalRun([tmp_path / "apps.yaml"], tmp_path / "cache") as run:
        run.wait_serving()
        reached = run.wait_status(
            lambda s: state_condition(s).get("status") == "True", what="reachable"
        )
        redis.stop()
        lost = run.wait_status(
            lambda s: state_condition(s).get("status") == "False", what="unreachable"
        )
        redis.start()
        back = run.wait_status(
            lambda s: state_condition(s).get("status") == "True", what="reachable again"
        )
    assert state_condition(reached)["reason"] == "Reachable"
    message = state_condition(lost)["message"]
    assert message.startswith("1 of 1 frontends report the redis backend unreachable since ")
    assert (
        state_condition(back)["message"] == "all 1 frontends that answered reach the redis backend"
    )
