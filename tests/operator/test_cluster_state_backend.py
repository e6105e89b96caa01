"""``StateBackendReachable`` on the real control plane, from a real frontend and Redis.

kwok runs no containers, so the frontend runs here, on 127.0.0.1, sharing its
selection state through a ``redis-server`` the test started, and stands in for
the app's frontend pod as in the analysis tests (``frontend_stand_in``: a pod
with the frontend's labels and ``http`` port, Ready at 127.0.0.1). The operator
reads that pod's ``/v1/stats/versions`` as it reads every frontend pod, every
``--state-check-seconds``. Stopping Redis turns the condition False, naming how
many frontends report it and since when; starting it again (same port) turns
it True. No timing is asserted; the test waits, bounded, for the status.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clipper.testing.controlplane import ControlPlane
from clipper.testing.frontend import FrontendProcess, route, start_model_servers, write_routes
from clipper.testing.k8s_clipper import (
    APPS,
    clipper_app,
    condition,
    create,
    events,
    frontend_stand_in,
    operator,
    wait_for_object,
)
from clipper.testing.model_servers import ModelServer
from clipper.testing.redis_server import RedisServer

pytestmark = pytest.mark.controlplane

STATE = "StateBackendReachable"


@pytest.fixture(scope="module")
def noop() -> Iterator[ModelServer]:
    (server,) = start_model_servers([{"framework": "noop", "name": "m", "args": []}])
    yield server
    server.stop()


def state_is(status: str) -> Any:
    """Whether the app's StateBackendReachable condition has ``status``."""

    def check(obj: dict[str, Any]) -> bool:
        conditions = (obj.get("status") or {}).get("conditions") or []
        return any(c["type"] == STATE and c["status"] == status for c in conditions)

    return check


REACHABLE = (state_is("True"), "StateBackendReachable True")
UNREACHABLE = (state_is("False"), "StateBackendReachable False")


def columns(printed: str) -> dict[str, str]:
    """``kubectl get``'s first row by column name (cells cut at the header's offsets)."""
    header, row = printed.splitlines()[:2]
    names = header.split()
    starts = [header.index(name) for name in names]
    ends = [*starts[1:], len(row) + 1]
    return {n: row[a:b].strip() for n, a, b in zip(names, starts, ends, strict=True)}


def test_the_condition_follows_the_frontends_redis_down_and_back(
    k8s: ControlPlane,
    namespace: str,
    operator_kubeconfig: Path,
    tmp_path: Path,
    noop: ModelServer,
    redis: RedisServer,
) -> None:
    routes = write_routes(tmp_path / "routes.yaml", route("shop", {"m": [noop.address]}))
    state = ["--state-backend", "redis", "--state-url", redis.url, "--state-refresh-s", "0.1"]
    with (
        FrontendProcess(routes, state) as fe,
        operator(operator_kubeconfig, namespace, tmp_path, "--state-check-seconds", "1") as proc,
    ):
        fe.wait_ready()
        spec = {"state": {"backend": "redis", "url": redis.url}}
        create(k8s, namespace, clipper_app("shop", ["m"], **spec))
        frontend_stand_in(k8s, namespace, "shop", fe.http_port)
        reached = wait_for_object(k8s, namespace, APPS, "shop", *REACHABLE, operator=proc)
        redis.stop()
        lost = wait_for_object(k8s, namespace, APPS, "shop", *UNREACHABLE, operator=proc)
        printed = k8s.kubectl("get", "capp", "shop", "-n", namespace, "-o", "wide").stdout
        redis.start()
        back = wait_for_object(k8s, namespace, APPS, "shop", *REACHABLE, operator=proc)
        seen = events(k8s, namespace, "shop")
    assert "frontends that answered reach the redis backend" in condition(reached, STATE)["message"]
    message = condition(lost, STATE)["message"]
    assert message.startswith("1 of 1 frontends report the redis backend unreachable since 20")
    assert columns(printed)["STATE"] == "False"
    assert (
        condition(back, STATE)["lastTransitionTime"] >= condition(lost, STATE)["lastTransitionTime"]
    )
    reasons = [reason for _, reason, _ in seen]
    assert "StateBackendUnreachable" in reasons
    assert "StateBackendReachable" in reasons
