"""The evaluation harness (``make eval``) at a tiny scale: its result files and document.

``--quick`` runs every section for real (containers, frontends, ``clipper run``,
wrk, the policies, benchmarks/overload.py) for a second or so per cell; these
tests check what the files hold and that the document and its plots are written
from them. No timing is asserted: the numbers of a quick run mean nothing.
The peers join only when their virtualenvs are already installed (installing
them is minutes and gigabytes: ``make eval`` does it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SECTIONS = ["batching", "cache", "selection", "rollout", "gpu"]


def _peers_installed(repo_root: Path) -> bool:
    code = (
        "from evaluation import peers; print(peers.MLSERVER.installed() and peers.RAY.installed())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo_root / "benchmarks",
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip() == "True"


@pytest.fixture(scope="module")
def quick_run(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    sections = SECTIONS + (["peers"] if _peers_installed(repo_root) else [])
    out = tmp_path_factory.mktemp("eval")
    done = subprocess.run(
        [
            sys.executable,
            str(repo_root / "benchmarks/eval.py"),
            "--quick",
            "--only",
            ",".join(sections),
            "--results",
            str(out / "results"),
            "--docs",
            str(out / "docs"),
            "--note",
            "quick smoke run",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    return {"sections": sections, "results": results, "docs": out / "docs"}


@pytest.mark.timeout(1000)
def test_every_section_writes_its_result_with_machine_versions_and_date(
    quick_run: dict[str, Any],
) -> None:
    results = quick_run["results"]
    assert sorted(results) == sorted(quick_run["sections"])
    for section, body in results.items():
        assert body["section"] == section
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", body["date"])
        machine = body["machine"]
        assert machine["cores"] >= 1
        assert machine["cpu"]
        assert machine["memory_gib"] > 0
        assert len(machine["load_average"]) == 3
        assert set(machine["gpu"]) >= {"available"}
        versions = body["versions"]
        assert versions["python"] == sys.version.split()[0]
        assert versions["clipper_commit"] != "unknown"
        assert versions["ours"]["numpy"]
        assert body["data"]["elapsed_s"] >= 0


@pytest.mark.timeout(1000)
def test_load_sections_hold_a_measured_cell_for_each_combination(
    quick_run: dict[str, Any],
) -> None:
    batching = quick_run["results"]["batching"]["data"]
    combos = {(c["shape"], c["mode"], c["concurrency"]) for c in batching["cells"]}
    assert len(combos) == len(batching["shapes"]) * len(batching["modes"]) * len(
        batching["concurrency"]
    )
    assert all(c["requests"] > 0 for c in batching["cells"])
    assert {r["shape"] for r in batching["summary"]} == set(batching["shapes"])

    cache = quick_run["results"]["cache"]["data"]
    streams = {c["stream"] for c in cache["cells"]}
    assert {"uniform", "recommend", "bursts"} <= streams
    assert any(s.startswith("zipf-") for s in streams)
    assert {(c["stream"], c["cache"]) for c in cache["cells"]} == {
        (s, side) for s in streams for side in ("on", "off")
    }
    off = [c for c in cache["cells"] if c["cache"] == "off"]
    assert all(c["hit_rate"] == 0 for c in off)  # a cache that is off never hits
    bursts = next(c for c in cache["cells"] if (c["stream"], c["cache"]) == ("bursts", "on"))
    assert bursts["hit_rate"] > 0.5  # identical queries in flight together: coalesced or hit
    # overload.py's own table, parsed: the format this harness reads is still the one it prints
    assert cache["overload"]["rows"], cache["overload"]["text"]

    if "peers" in quick_run["results"]:
        peers = quick_run["results"]["peers"]["data"]
        assert set(peers["systems"]) == {"ours", "mlserver", "ray"}
        assert {c["system"] for c in peers["cells"]} == set(peers["systems"])
        assert all(c["rps"] > 0 for c in peers["cells"]), peers["cells"]
        assert set(quick_run["results"]["peers"]["versions"]["peers"]) == {"mlserver", "ray"}


@pytest.mark.timeout(1000)
def test_selection_rollout_and_gpu_record_what_they_claim(quick_run: dict[str, Any]) -> None:
    selection = quick_run["results"]["selection"]["data"]
    policies = selection["digits"]["policies"]
    assert set(policies) == {"exp3", "exp4", "epsilon_greedy", "thompson"}
    for row in policies.values():
        mean, half = row["accuracy"]
        assert 0 <= mean <= 1
        assert half >= 0
        assert row["oracle_accuracy"][0] >= row["best_accuracy"][0]
    assert {r["data"] for r in selection["ensembles"]} == {"digits", "breast_cancer"}
    front = selection["frontend"]
    assert len(front["accuracy_curve"]) == front["queries"]

    rollout = quick_run["results"]["rollout"]["data"]
    canary = rollout["runs"][0]
    assert canary["strategy"] == "Canary"
    assert [e for _, e in canary["events"]] == ["apply v2 (Canary)", "v2 stable"]
    shares = [w["share_v2"] for w in canary["timeline"] if w["share_v2"] is not None]
    assert min(shares) == 0.0
    # v2 takes all the traffic; a window may still hold an answer of v1's that was in
    # flight, or routed before the frontend followed the new table (CI saw 0.997).
    assert max(shares) > 0.99
    assert all(0.0 <= s <= 1.0 for s in shares)
    if "Shadow" not in rollout["strategies"]:
        assert any("Shadow promotion skipped" in n for n in rollout["notes"])
    else:
        _check_shadow_promotion(rollout)

    gpu = quick_run["results"]["gpu"]["data"]
    assert gpu["device"]["available"] == bool(gpu["cells"])


def _check_shadow_promotion(rollout: dict[str, Any]) -> None:
    """The weak forest at v1, the strong one shadowed at v2 and labelled by the callers:
    the run's own sequential test promoted v2, and no caller got a v2 answer before."""
    assert [r["strategy"] for r in rollout["runs"]] == ["Canary", "Shadow"], rollout["notes"]
    shadow = rollout["runs"][1]
    events = [e for _, e in shadow["events"]]
    assert events == ["apply v2 (Shadow)", "v2 shadowing", "v2 promoted", "v2 stable"]
    verdict = shadow["verdict"]
    assert verdict["evidence"].startswith("v2 is better: n=")
    assert verdict["pairs"] == verdict["wins"] + verdict["losses"] + verdict["ties"]
    assert verdict["pairs"] >= verdict["min_samples"]
    assert verdict["wins"] - verdict["losses"] >= verdict["net_wins_needed"]
    assert verdict["log_ratio"] >= verdict["upper"]
    assert verdict["labels_sent"] > 0
    assert verdict["labels_refused"] == 0  # every label found its query
    counted = verdict["counted_shadowed"]
    assert counted["v1"] > 0
    assert counted["v2"] == 0  # shadowed: v2 answered no caller
    windows = shadow["timeline"]
    assert sum(w["mirrored"] or 0 for w in windows) > 0
    assert sum(w["labels"] for w in windows) >= verdict["labels_sent"]
    shares = [w["share_v2"] for w in windows if w["share_v2"] is not None]
    assert min(shares) == 0.0
    assert max(shares) > 0.99  # as for the canary: a window may hold a v1 answer in flight
    assert set(shadow["phases"]) == {"before", "during", "after", "shadowed"}
    assert all(p["requests"] > 0 for p in shadow["phases"].values()), shadow["phases"]


@pytest.mark.timeout(1000)
def test_the_document_and_its_plots_come_from_the_results(quick_run: dict[str, Any]) -> None:
    doc = (quick_run["docs"] / "evaluation.md").read_text()
    assert doc.startswith("# Evaluation")
    assert "> **quick smoke run**" in doc
    assert doc.index("## Headline") < doc.index("## 1.")
    for image in re.findall(r"\]\((evaluation/[\w-]+\.png)\)", doc):
        assert (quick_run["docs"] / image).stat().st_size > 1000
    assert {"batching.png", "cache.png", "selection.png", "rollout.png"} <= {
        p.name for p in (quick_run["docs"] / "evaluation").iterdir()
    }
    if "peers" not in quick_run["results"]:
        assert "_Not run: no `peers.json` in the results._" in doc
    rollout = quick_run["results"]["rollout"]["data"]
    for run in rollout["runs"]:  # a sentence each on what the callers saw
        assert f"**{run['strategy']}**: callers saw a p99 of " in doc
    for run in rollout["runs"][1:]:
        assert f"The sequential test promoted v2 on {run['verdict']['pairs']} labelled" in doc
