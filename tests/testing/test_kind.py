"""The parts of the kind fixture that need no Docker: the runtime wrapper that lets
kind's privileged nodes start here, and the cluster config every cluster gets.

The wrapper is run for real, as dockerd runs it, with ``/bin/echo`` standing in for
runc's binary (``CLIPPER_KIND_RUNC``): echo prints the arguments it was exec'ed with,
so a test sees both what the wrapper did to the spec on disk and what it handed on.
The cluster itself is tested by e2e/test_cluster_smoke.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from clipper.testing.kind import RUNTIME_SOURCE, _ready, cluster_config

CAPS = ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def run_wrapper(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLIPPER_KIND_RUNC": "/bin/echo"}
    return subprocess.run(
        [str(RUNTIME_SOURCE), *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=30,
    )


def write_spec(path: Path, *, whole: bool) -> None:
    process = {"args": ["/pause"], "capabilities": {s: list(CAPS) for s in SETS}}
    path.write_text(json.dumps({"ociVersion": "1.0.2", "process": process} if whole else process))


def caps_of(path: Path, *, whole: bool) -> dict[str, list[str]]:
    spec = json.loads(path.read_text())
    caps: dict[str, list[str]] = (spec["process"] if whole else spec)["capabilities"]
    return caps


def test_create_drops_cap_sys_resource_from_every_set_and_keeps_the_rest(tmp_path: Path) -> None:
    write_spec(tmp_path / "config.json", whole=True)
    args = ["--root", "/run/r", "--log", "/tmp/l.json", "create", "--bundle", str(tmp_path), "abc"]
    result = run_wrapper(*args)
    kept = [c for c in CAPS if c != "CAP_SYS_RESOURCE"]
    assert caps_of(tmp_path / "config.json", whole=True) == dict.fromkeys(SETS, kept)
    assert result.stdout.split() == args  # runc gets the arguments unchanged


def test_the_bundle_may_be_given_as_bundle_equals_or_be_the_working_directory(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_spec(tmp_path / "a" / "config.json", whole=True)
    write_spec(tmp_path / "b" / "config.json", whole=True)
    run_wrapper("run", f"--bundle={tmp_path / 'a'}", "x")
    subprocess.run(
        [str(RUNTIME_SOURCE), "create", "y"],
        cwd=tmp_path / "b",
        env={**os.environ, "CLIPPER_KIND_RUNC": "/bin/echo"},
        check=True,
        capture_output=True,
        timeout=30,
    )
    for folder in ("a", "b"):
        caps = caps_of(tmp_path / folder / "config.json", whole=True)
        assert all("CAP_SYS_RESOURCE" not in values for values in caps.values()), folder


def test_exec_drops_it_from_the_process_file(tmp_path: Path) -> None:
    process = tmp_path / "process.json"
    write_spec(process, whole=False)
    run_wrapper("--root", "/run/r", "exec", "--process", str(process), "--detach", "abc")
    assert all(
        "CAP_SYS_RESOURCE" not in values for values in caps_of(process, whole=False).values()
    )


def test_other_commands_pass_through_untouched(tmp_path: Path) -> None:
    write_spec(tmp_path / "config.json", whole=True)
    before = (tmp_path / "config.json").read_text()
    result = run_wrapper("--root", "/run/r", "delete", "--force", "abc")
    assert result.stdout.split() == ["--root", "/run/r", "delete", "--force", "abc"]
    assert (tmp_path / "config.json").read_text() == before


def test_every_cluster_lets_the_kubelet_run_on_cgroup_v1_and_mounts_the_host_folders(
    tmp_path: Path,
) -> None:
    patch = "kind: ClusterConfiguration\napiServer:\n  extraArgs:\n  - {name: v, value: '2'}\n"
    config = yaml.safe_load(
        cluster_config("clipper-kind-node:v1-abc", [(tmp_path, "/models")], [patch])
    )
    assert config["kind"] == "Cluster"
    (node,) = config["nodes"]
    assert node["role"] == "control-plane"
    assert node["image"] == "clipper-kind-node:v1-abc"
    assert node["extraMounts"] == [
        {"hostPath": str(tmp_path.resolve()), "containerPath": "/models"}
    ]
    patches = [yaml.safe_load(p) for p in config["kubeadmConfigPatches"]]
    assert {"kind": "KubeletConfiguration", "failCgroupV1": False} in patches
    assert patches[-1] == yaml.safe_load(patch)


def test_a_pod_row_is_ready_when_running_with_every_container_ready_or_completed() -> None:
    assert _ready("2/2", "Running")
    assert _ready("0/1", "Completed")
    assert not _ready("1/2", "Running")
    assert not _ready("0/1", "ContainerCreating")
    assert not _ready("0/1", "CrashLoopBackOff")
