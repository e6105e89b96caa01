"""The real ``helm`` CLI for the chart's tests: found in the cache, run, its output parsed.

``scripts/build-helm.sh`` builds helm from its Go module into the same cache as the
control plane (the version is ``HELM_VERSION`` in scripts/controlplane.env). The
tests run that binary, never a Python stand-in for Go templates, so what they check
is what ``helm install`` would apply. As with the control plane, a missing build
skips the test on a workstation and fails it under ``CI=true``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from clipper.testing.k8s_install import REPO_ROOT, cache_dir, read_versions, require_build

CHART = REPO_ROOT / "helm" / "clipper"
RELEASE = "clipper"


def find_helm() -> tuple[Path | None, str]:
    """The cached helm binary, or ``None`` and why it is not usable."""
    version = read_versions().get("HELM_VERSION")
    if version is None:
        return None, "HELM_VERSION is not set in scripts/controlplane.env"
    root = cache_dir(read_versions()).parent / f"helm-{version}"
    stamp = root / "STAMP"
    binary = root / "bin" / "helm"
    if not stamp.is_file() or stamp.read_text().strip() != f"helm={version}":
        return None, f"no complete build of helm {version} in {root}"
    if not os.access(binary, os.X_OK):
        return None, f"{binary} is not executable"
    return binary, ""


def require_helm() -> Path:
    """The cached helm; else skip the test, or fail it under ``CI=true``."""
    binary, why = find_helm()
    return require_build(binary, why, "helm", "helm")


class Helm:
    """One helm binary, with its own config and cache dirs (nothing from ``~``)."""

    def __init__(self, binary: Path, home: Path, kubeconfig: Path | None = None) -> None:
        self.binary = binary
        self.env = {
            **os.environ,
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        if kubeconfig is not None:
            self.env["KUBECONFIG"] = str(kubeconfig)

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args],
            capture_output=True, text=True, env=self.env, timeout=timeout, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
        return result

    def template(
        self, *sets: str, namespace: str = "clipper-system", values: Sequence[Path] = ()
    ) -> list[dict[str, Any]]:
        """``helm template`` with the CRDs, parsed: every object the chart renders."""
        args = ["template", RELEASE, str(CHART), "--namespace", namespace, "--include-crds"]
        for path in values:
            args += ["--values", str(path)]
        for item in sets:
            args += ["--set", item]
        return [d for d in yaml.safe_load_all(self.run(*args).stdout) if d]
