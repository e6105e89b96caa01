"""Drain on rollout: every pod the operator creates keeps serving while Kubernetes
takes it out of its Service, and its grace period covers its whole drain."""

from __future__ import annotations

import argparse
from typing import Any

from clipper.common import api
from clipper.model_wrappers.cli import register
from clipper.operator.builders import build_frontend_deployment, build_model_deployment, drain
from clipper.operator.settings import OperatorSettings

SETTINGS = OperatorSettings()


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def model_pod() -> dict[str, Any]:
    md = api.ModelDeployment.model_validate(
        {
            "metadata": {"name": "m", "namespace": "ns", "uid": "u"},
            "spec": {"version": "v1", "framework": "sklearn", "modelUri": "/m.joblib"},
        }
    )
    return pod_spec(build_model_deployment(md, "v1", md.spec.template(), 1, SETTINGS))


def frontend_pod(**frontend: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"models": ["m"], **({"frontend": frontend} if frontend else {})}
    app = api.ClipperApp.model_validate(
        {"metadata": {"name": "a", "namespace": "ns", "uid": "u"}, "spec": spec}
    )
    return pod_spec(build_frontend_deployment(app, SETTINGS))


def flag(args: list[str], name: str) -> float:
    return float(args[len(args) - 1 - args[::-1].index(name) + 1])


def test_timings_add_up_to_the_termination_grace_period() -> None:
    timings = drain.DrainTimings(prestop_sleep_s=5, drain_delay_s=2.5, grace_period_s=30)
    assert timings.termination_grace_s == 5 + 3 + 30 + drain.EXIT_MARGIN_S
    assert timings.lifecycle() == {"preStop": {"sleep": {"seconds": 5}}}


def test_model_pods_sleep_before_sigterm_then_drain_within_their_grace_period() -> None:
    pod = model_pod()
    (container,) = pod["containers"]
    # A native sleep action: the model image has no shell for an exec of sleep.
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": drain.PRESTOP_SLEEP_S}}}
    args = container["args"]
    delay, grace = flag(args, "--drain-delay-s"), flag(args, "--grace-period-s")
    assert delay == drain.MODEL_DRAIN_DELAY_S > 0
    assert pod["terminationGracePeriodSeconds"] >= drain.PRESTOP_SLEEP_S + delay + grace


def test_the_model_server_accepts_the_drain_flags() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    (container,) = model_pod()["containers"]
    ns = parser.parse_args(["model", "serve", *container["args"]])
    assert (ns.drain_delay_s, ns.grace_period_s) == (
        drain.MODEL_DRAIN_DELAY_S,
        drain.MODEL_GRACE_PERIOD_S,
    )


def test_frontend_pods_sleep_before_sigterm_and_their_grace_period_covers_the_drain() -> None:
    pod = frontend_pod()
    (container,) = pod["containers"]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": drain.PRESTOP_SLEEP_S}}}
    delay, grace = (
        flag(container["args"], "--drain-delay-s"),
        flag(container["args"], "--grace-period-s"),
    )
    assert (delay, grace) == (5, drain.FRONTEND_GRACE_PERIOD_S)  # the CRD's default delay
    assert pod["terminationGracePeriodSeconds"] >= drain.PRESTOP_SLEEP_S + delay + grace


def test_an_apps_longer_drain_delay_lengthens_its_frontends_grace_period() -> None:
    pod = frontend_pod(drainDelaySeconds=120)
    (container,) = pod["containers"]
    assert flag(container["args"], "--drain-delay-s") == 120
    needed = drain.PRESTOP_SLEEP_S + 120 + drain.FRONTEND_GRACE_PERIOD_S
    assert pod["terminationGracePeriodSeconds"] == needed + drain.EXIT_MARGIN_S
