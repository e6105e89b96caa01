"""Local mode's check that each model is where its manifest says.

In a cluster the model server finds out when it starts (and the rollout fails
cleanly); without one, ``clipper run`` checks before it starts anything, so a typo
in a path is one clear error instead of a crash-looping process.

``modelUri`` is a path or a ``file://`` URI, relative to the manifest's directory,
or, for the python framework, ``module:function``; an http(s):// or s3:// URI is
fetched by the model server when it starts (not checked here: a check would
download the model twice), and pvc:// or image:/// are refused (cluster only).
A module is looked up with the manifest's directory first on ``sys.path`` -- the
runner gives model servers the same ``PYTHONPATH`` (``python_path``) -- and
imported in a child process, so a module's side effects (or a slow ``import
torch``) never touch the runner.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from clipper.common import api
from clipper.common.errors import ConfigError
from clipper.common.manifests.loading import Manifests
from clipper.common.storage import HttpUri, ImageUri, PvcUri, S3Uri, parse_uri

_REFERENCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")
IMPORT_TIMEOUT_S = 120.0

_PROBE = """
import importlib, sys
sys.path.insert(0, sys.argv[1])
module, _, attr = sys.argv[2].partition(":")
value = getattr(importlib.import_module(module), attr, None)
if not callable(value):
    sys.exit(f"{module!r} has no callable {attr!r}")
"""


def python_path(base_dir: Path) -> str:
    """The ``PYTHONPATH`` entry that model servers of manifests in ``base_dir`` need."""
    return str(base_dir.resolve())


def resolve_model_uri(uri: str, framework: str, base_dir: Path) -> str:
    """What to hand the model server: an absolute path, or ``module:function`` as is.

    Raises ``ConfigError`` (without a location) for a URI local mode cannot load.
    """
    if framework == "python" and _REFERENCE.match(uri) and not (base_dir / uri).exists():
        return uri
    location = parse_uri(uri)
    if isinstance(location, HttpUri | S3Uri):
        return uri  # the model server fetches it when it starts
    if isinstance(location, PvcUri | ImageUri):
        scheme = uri.split(":", 1)[0]
        raise ConfigError(
            f"{uri!r}: {scheme}:// names a place in a cluster; local mode loads a path, "
            "file://, http(s):// or s3:// URI"
        )
    return str((base_dir / Path(location.path).expanduser()).resolve())


def check_importable(reference: str, base_dir: Path) -> str | None:
    """Why ``module:function`` cannot be imported from ``base_dir``, or None if it can."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, python_path(base_dir), reference],
            capture_output=True,
            text=True,
            timeout=IMPORT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"importing {reference!r} took over {IMPORT_TIMEOUT_S:.0f}s"
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ["it exited with an error"])[-1]
    return f"cannot import {reference!r}: {last}"


def _missing(target: str, base_dir: Path) -> str | None:
    """Why a resolved model URI cannot be loaded, if it cannot."""
    if "://" in target:  # remote: its fetch, when the server starts, says what fails
        return None
    if _REFERENCE.match(target) and not Path(target).exists():
        return check_importable(target, base_dir)
    return None if Path(target).exists() else f"{target} does not exist"


def _problems(model: api.ModelDeployment, base_dir: Path) -> list[tuple[str, str]]:
    spec = model.spec
    problems: list[tuple[str, str]] = []
    if spec.model_uri is not None and spec.framework != "noop":
        try:
            target = resolve_model_uri(spec.model_uri, spec.framework, base_dir)
        except ConfigError as exc:
            problems.append(("spec.modelUri", exc.message))
        else:
            why = _missing(target, base_dir)
            problems.extend([("spec.modelUri", why)] if why else [])
    if spec.factory:
        why = check_importable(spec.factory, base_dir)
        problems.extend([("spec.factory", why)] if why else [])
    return problems


def check_model_uris(found: Manifests) -> list[ConfigError]:
    """Every ModelDeployment whose model cannot be found from where its manifest is."""
    return [
        ConfigError(message, found.location(model, field_path))
        for model in found.deployments
        for field_path, message in _problems(model, found.source(model).base_dir)
    ]
