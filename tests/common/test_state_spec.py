"""``spec.state``: what the CRD refuses, what reaches the frontend, and what local
mode cannot do (a Secret)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from clipper.common import api, manifests
from clipper.common.errors import ConfigError, InvalidManifests
from clipper.common.frontend_args import frontend_flags
from clipper.common.settings_cli import add_settings_flags, settings_from
from clipper.frontend.settings import FrontendSettings

APP = """\
apiVersion: clipper.dev/v1alpha1
kind: ClipperApp
metadata: {{name: digits}}
spec:
  models: [m]
  state:
{state}
---
apiVersion: clipper.dev/v1alpha1
kind: ModelDeployment
metadata: {{name: m}}
spec: {{version: v1, framework: noop}}
"""


def errors_of(tmp_path: Path, state: str) -> list[str]:
    path = tmp_path / "app.yaml"
    path.write_text(APP.format(state=textwrap.indent(textwrap.dedent(state).strip(), "    ")))
    try:
        manifests.load(path)
    except InvalidManifests as exc:
        return [str(e) for e in exc.errors]
    return []


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("backend: redis", "needs exactly one of url or secretRef"),
        (
            "{backend: redis, url: 'redis://a:6379', secretRef: {name: s}}",
            "needs exactly one of url or secretRef",
        ),
        ("url: 'redis://a:6379'", "are for backend redis"),
        ("{backend: redis, url: 'http://a:6379'}", "spec.state.url"),
        ("{backend: redis, url: 'redis://:hunter2@a:6379'}", "spec.state.url"),
        ("{backend: redis, secretRef: {name: redis-url}}", "local mode has no Secrets"),
        ("backend: mongo", "spec.state.backend"),
    ],
)
def test_a_bad_state_is_refused_with_a_clear_error(tmp_path: Path, state: str, words: str) -> None:
    errors = errors_of(tmp_path, state)
    assert any(words in e for e in errors), errors


def test_a_good_state_loads(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "{backend: redis, url: 'redis://127.0.0.1:6379/0'}") == []
    assert errors_of(tmp_path, "backend: memory") == []


def parse(flags: list[str]) -> FrontendSettings:
    import argparse

    parser = argparse.ArgumentParser()
    add_settings_flags(parser, FrontendSettings)
    return settings_from(parser.parse_args(flags), FrontendSettings)


def test_the_state_reaches_the_frontend_as_flags_without_its_url() -> None:
    state = api.StateSpec.model_validate(
        {"backend": "redis", "url": "redis://r:6379/0", "queryLogTTLSeconds": 60,
         "queryLogMaxBytes": 1000}
    )  # fmt: skip
    flags = frontend_flags(api.FrontendSpec(), state, "ml")
    assert "redis://r:6379/0" not in flags  # the URL travels in the environment
    settings = parse([*flags, "--state-url", "redis://r:6379/0"])
    assert settings.state_backend == "redis"
    assert settings.state_key_prefix == "clipper:ml"
    assert settings.query_log_ttl_s == 60
    assert settings.query_log_max_bytes == 1000
    assert parse(frontend_flags(api.FrontendSpec(), api.StateSpec())).state_backend == "memory"


def test_several_frontend_processes_need_a_shared_backend() -> None:
    with pytest.raises(ConfigError, match=r"set spec.state.backend: redis"):
        api.StateSpec().require_shared(2)
    api.StateSpec().require_shared(1)
    api.StateSpec(backend="redis", url="redis://r").require_shared(4)
    assert api.StateSpec(backend="redis", url="redis://r").shared
    assert not api.StateSpec().shared
