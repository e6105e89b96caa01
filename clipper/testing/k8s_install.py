"""Where the test control plane's binaries are, and what to do when they are not.

``scripts/build-controlplane.sh`` builds them into a cache outside the repository,
named after the versions pinned in ``scripts/controlplane.env``; this module reads the
same file, so the two cannot drift apart. A build counts only when its STAMP lists
exactly the pinned versions and every binary is there.

Missing binaries skip the tests that need them, with the command that builds them,
except under ``CI=true``: there they fail, because a CI run that skipped the cluster
tests must never look green.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from clipper.testing.timeouts import in_ci

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "scripts" / "controlplane.env"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """``KEY=VALUE`` lines of scripts/controlplane.env (shell syntax, no expansions)."""
    versions = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip().strip("'\"")
    return versions


def cache_root() -> Path:
    """Where the scripts/build-*.sh builds live (scripts/lib/cached-build.sh; keep in step)."""
    root = os.environ.get("CLIPPER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "clipper"
    )
    return Path(root)


def cache_dir(versions: dict[str, str]) -> Path:
    """Where scripts/build-controlplane.sh puts the binaries (keep the two in step)."""
    return cache_root() / f"k8s-{versions['KUBERNETES_VERSION']}"


def require_build(found: T | None, why: str, what: str, make_target: str) -> T:
    """``found``; else skip the test, or fail it under ``CI=true`` (never skip in CI).

    The one place the three cached builds (control plane, helm, S3 server) turn
    "not built" into a skip that names the ``make`` target that builds them.
    """
    import pytest

    if found is None:
        message = f"{what} is not built ({why}): run `make {make_target}`"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


@dataclass(frozen=True)
class Installation:
    """A complete build: the binaries plus kwok's stage definitions."""

    bin_dir: Path
    kwok_stages: Path
    kubernetes_version: str


def find_installation() -> tuple[Installation | None, str]:
    """The cached build, or ``None`` and why it is not usable."""
    if not VERSIONS_FILE.is_file():
        return None, f"{VERSIONS_FILE} not found: run from a source checkout"
    versions = read_versions()
    root = cache_dir(versions)
    stamp = root / "STAMP"
    want = " ".join(
        f"{name}={versions[key]}"
        for name, key in (
            ("kubernetes", "KUBERNETES_VERSION"),
            ("etcd", "ETCD_VERSION"),
            ("kwok", "KWOK_VERSION"),
        )
    )
    if not stamp.is_file() or stamp.read_text().strip() != want:
        return None, f"no complete build of {want} in {root}"
    missing = [b for b in BINARIES if not os.access(root / "bin" / b, os.X_OK)]
    if missing:
        return None, f"{root / 'bin'} lacks {', '.join(missing)}"
    return Installation(root / "bin", root / "kwok-stages.yaml", versions["KUBERNETES_VERSION"]), ""


def require_installation() -> Installation:
    """The cached build; else skip the test, or fail it under ``CI=true`` (never skip in CI)."""
    installation, why = find_installation()
    return require_build(installation, why, "the test Kubernetes control plane", "controlplane")
