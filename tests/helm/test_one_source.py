"""The chart and ``clipper operator manifests`` render the same objects.

The chart's templates are plain, idiomatic Helm templates, and
``operator/builders/install.py`` stays the source of what the operator needs (its
RBAC rules name the calls ``kube.py`` makes). This test is what keeps them one:
for each pair of equivalent settings it renders both and compares every object,
after removing only what Helm adds by design -- its bookkeeping labels
(instance, managed-by, version, helm.sh/chart), the Namespace (``helm install
--create-namespace`` makes it) and the chart's optional extras (PodDisruptionBudget,
ServiceMonitor, dashboard ConfigMap). A rule, a verb, an env var or a security
setting changed on one side only fails here.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from clipper.testing.k8s_helm import Helm

HELM_LABELS = {
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
}
CHART_ONLY = {"PodDisruptionBudget", "ServiceMonitor", "ConfigMap"}

Key = tuple[str, str, str]


def keyed(objects: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    out = {}
    for obj in objects:
        if obj["kind"] in CHART_ONLY or obj["kind"] == "Namespace":
            continue
        meta = obj["metadata"]
        labels = {k: v for k, v in meta.get("labels", {}).items() if k not in HELM_LABELS}
        meta = (
            {**meta, "labels": labels}
            if labels
            else {k: v for k, v in meta.items() if k != "labels"}
        )
        out[obj["kind"], meta.get("namespace", ""), meta["name"]] = {**obj, "metadata": meta}
    return out


def manifests(*args: str) -> list[dict[str, Any]]:
    printed = subprocess.run(
        [sys.executable, "-m", "clipper", "operator", "manifests", *args],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(printed) if d]


CASES = {
    "cluster-wide": ([], []),
    "exact namespaces": (
        ["--namespace", "team-a", "--namespace", "team-b"],
        ["watchNamespaces={team-a,team-b}"],
    ),
    "a glob": (["--namespace", "team-*"], ["watchNamespaces={team-*}"]),
    "other images": (
        [
            "--frontend-image",
            "reg.example/clipper:2.0",
            "--model-image",
            "reg.example/m:2.0",
            "--model-image-cuda",
            "reg.example/m:2.0-gpu",
            "--image-pull-policy",
            "Always",
        ],
        [
            "image.repository=reg.example/clipper",
            "image.tag=2.0",
            "defaultImages.model=reg.example/m:2.0",
            "defaultImages.modelCuda=reg.example/m:2.0-gpu",
            "image.pullPolicy=Always",
        ],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_chart_renders_what_clipper_operator_manifests_prints(helm: Helm, case: str) -> None:
    cli_args, sets = CASES[case]
    printed = keyed(manifests("--install-namespace", "ops", *cli_args))
    rendered = keyed(helm.template(*sets, namespace="ops"))
    assert rendered.keys() == printed.keys()
    for key, obj in printed.items():
        assert rendered[key] == obj, key
