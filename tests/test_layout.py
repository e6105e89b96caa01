"""The package layout: components import under ``clipper.`` and never shadow the stdlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("component", ["model_wrappers", "frontend", "operator"])
def test_component_folders_import_under_clipper(component: str, repo_root: Path) -> None:
    module = __import__(f"clipper.{component}", fromlist=["_"])
    paths = [Path(p).resolve() for p in module.__path__]
    assert (repo_root / component).resolve() in paths


def test_operator_folder_never_shadows_stdlib(repo_root: Path) -> None:
    # -S: no site imports, so nothing has imported `operator` before the command
    # runs with the repository root first on sys.path -- the worst case.
    out = subprocess.run(
        [sys.executable, "-S", "-c", "import operator; print(operator.__file__)"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert not Path(out).resolve().is_relative_to(repo_root.resolve()), out
