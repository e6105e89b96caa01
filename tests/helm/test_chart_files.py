"""The chart's files against their sources: the CRDs are copies of crds/, the
appVersion is the project's, and the dashboard queries only metrics the frontend
really exports. No helm needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from clipper import __version__
from clipper.frontend.cache.base import CacheStats
from clipper.frontend.metrics import AppState, Metrics, ReplicaState, Snapshot, VersionState
from clipper.testing.k8s_helm import CHART


def test_chart_crds_are_the_top_level_crds(repo_root: Path) -> None:
    source = {p.name: p.read_bytes() for p in (repo_root / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert source, "crds/ is empty"
    assert chart.keys() == source.keys(), "run `make chart` to copy crds/ into the chart"
    for name, text in source.items():
        assert chart[name] == text, f"helm/clipper/crds/{name} differs: run `make chart`"


def test_chart_version_is_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    assert chart["version"] == __version__


def exported_series() -> set[str]:
    """Every series name a frontend's /metrics can hold, from a real ``Metrics``
    with one app, model version and replica."""
    metrics = Metrics()
    snapshot = Snapshot(
        apps=[AppState("a", CacheStats(), {"m": 1.0})],
        versions=[VersionState("m", "v1", 0)],
        replicas=[ReplicaState("m", "v1", "r", True, 8)],
    )
    metrics.watch(lambda: snapshot)
    text = metrics.exposition().decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def dashboard_queries() -> list[str]:
    board = json.loads((CHART / "dashboards" / "clipper.json").read_text())
    queries = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    return queries + [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]


def test_dashboard_names_only_metrics_the_frontend_exports() -> None:
    exported = exported_series()
    used = {m for q in dashboard_queries() for m in re.findall(r"clipper_\w+", q)}
    assert used, "the dashboard queries no clipper metric"
    assert used <= exported, f"not exported by clipper.frontend.metrics: {used - exported}"


def test_dashboard_covers_what_an_operator_watches() -> None:
    text = "\n".join(dashboard_queries())
    for metric in (
        "clipper_frontend_request_duration_seconds_bucket",  # p50 / p99
        "clipper_frontend_request_duration_seconds_count",  # throughput
        "clipper_frontend_batch_size_sum",
        "clipper_frontend_queue_wait_seconds_bucket",
        "clipper_frontend_cache_hits_total",
        "clipper_frontend_selection_weight",
        "clipper_frontend_default_outputs_total",
    ):
        assert metric in text, metric
    assert "$slo_seconds" in text  # p99 is drawn against the SLO
