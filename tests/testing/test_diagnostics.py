"""A failing test's report carries what is needed to diagnose it from CI's log alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper.testing.controlplane import ControlPlane
from clipper.testing.diagnostics import LOG_LINES, cluster_sections, tail
from clipper.testing.k8s_clipper import MODELS, create, model_deployment
from clipper.testing.processes import wait_for

TWO_TESTS = """
from clipper.testing.model_servers import ModelServer


def test_first_passes():
    with ModelServer.start("noop", name="earlier-one"):
        pass


def test_second_fails():
    with ModelServer.start("noop", name="the-failing-ones"):
        assert 1 + 1 == 3
"""


def test_a_failing_test_shows_the_log_of_each_process_it_started(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(TWO_TESTS)
    result = pytester.runpytest_subprocess("-p", "clipper.testing.plugin", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    # The section is titled with the process and its command, and holds its log.
    command = "clipper model serve --framework noop --name the-failing-ones"
    result.stdout.fnmatch_lines([f"*process * (exited with 0): {command}*"])
    assert "listening on 127.0.0.1:" in out
    # A process of an earlier test that has ended is not shown again.
    assert "earlier-one" not in out


def test_a_passing_test_adds_no_sections(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TWO_TESTS.replace("1 + 1 == 3", "1 + 1 == 2"))
    result = pytester.runpytest_subprocess("-p", "clipper.testing.plugin", "-rA")
    result.assert_outcomes(passed=2)
    assert "): clipper model serve" not in result.stdout.str()


def test_a_long_log_is_cut_to_its_tail() -> None:
    text = "\n".join(f"line {i}" for i in range(1000))
    cut = tail(text, LOG_LINES).splitlines()
    assert cut[0] == f"[{1000 - LOG_LINES} earlier lines left out]"
    assert cut[1:] == [f"line {i}" for i in range(1000 - LOG_LINES, 1000)]


WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-diagnosed}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example.invalid/web:1}]}
"""


def test_the_cluster_sections_hold_events_and_the_objects_of_the_namespaces(
    k8s: ControlPlane, operator_kubeconfig: Path, namespace: str
) -> None:
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=WEB)
    create(k8s, namespace, model_deployment("digits-diagnosed"))

    def scaled_up() -> dict[str, str] | None:
        found = dict(cluster_sections(k8s.kubectl, [namespace]))
        return found if "web-diagnosed" in found["kubectl get events -A"] else None

    sections = wait_for(scaled_up, timeout=60, what="the Deployment's Events")
    assert "ScalingReplicaSet" in sections["kubectl get events -A"]
    workloads = sections[
        f"kubectl get deployments,replicasets,pods,services,endpointslices -n {namespace} -o yaml"
    ]
    assert "kind: Deployment" in workloads
    assert "name: web-diagnosed" in workloads
    custom = sections[
        f"kubectl get clipperapps.clipper.dev,{MODELS}.clipper.dev -n {namespace} -o yaml"
    ]
    assert "kind: ModelDeployment" in custom
    assert "name: digits-diagnosed" in custom
