"""The control plane leaves no process behind: not after a session, not after a crash."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from clipper.testing.k8s_install import require_installation
from clipper.testing.processes import wait_for
from clipper.testing.timeouts import scaled

pytestmark = pytest.mark.controlplane

INNER_TESTS = """
import json, os

def test_records_the_components(k8s):
    record = {"pids": k8s.pids(), "workdir": str(k8s.workdir)}
    with open(os.environ["CLIPPER_TEST_RECORD"], "w") as f:
        json.dump(record, f)

def test_fails_on_purpose(k8s):
    assert False, "deliberate failure"
"""


def process_gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_session_teardown_stops_every_component_and_keeps_logs_of_a_failure(
    tmp_path: Path,
) -> None:
    require_installation()
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    record = tmp_path / "record.json"

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "clipper.testing.plugin",
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
            "-q",
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env={**os.environ, "CLIPPER_TEST_RECORD": str(record)},
        capture_output=True,
        text=True,
        timeout=scaled(400),
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    recorded = json.loads(record.read_text())
    assert len(recorded["pids"]) == 5
    assert [pid for pid in recorded["pids"] if not process_gone(pid)] == []
    workdir = Path(recorded["workdir"])
    try:
        # A failed session keeps the logs, and says where, in the report and the summary.
        assert f"component logs are kept in {workdir / 'logs'}" in result.stdout
        assert f"logs and kubeconfig kept in {workdir}" in result.stdout
        assert (workdir / "logs" / "kube-apiserver.log").stat().st_size > 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_components_die_with_the_test_process(tmp_path: Path) -> None:
    child = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from clipper.testing.k8s_component import Component
        c = Component("sleeper", ["sleep", "600"], Path({str(tmp_path)!r}))
        print(c.proc.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    sleeper = None
    try:
        assert parent.stdout is not None
        sleeper = int(parent.stdout.readline())
        assert not process_gone(sleeper)
        parent.send_signal(signal.SIGKILL)  # no chance to clean up
        parent.wait(timeout=scaled(10))
        wait_for(lambda: process_gone(sleeper), timeout=10, what="orphaned component to die")
    finally:
        parent.kill()
        parent.wait()
        if sleeper is not None and not process_gone(sleeper):
            os.kill(sleeper, signal.SIGKILL)
