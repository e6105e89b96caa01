"""``clipper operator``: flags, environment, manifests."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
import yaml

from clipper.cli import build_parser
from clipper.common.settings_cli import settings_from
from clipper.operator.settings import OperatorSettings
from clipper.testing.timeouts import scaled


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["operator", *argv])


def test_flags_become_settings_and_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLIPPER_OPERATOR_MODEL_IMAGE", "env:1")
    monkeypatch.setenv("CLIPPER_OPERATOR_WORKERS", "9")
    settings = settings_from(
        parse("--namespace", "a", "--namespace", "b", "--workers", "3"), OperatorSettings
    )
    assert settings.namespaces == ("a", "b")
    assert settings.workers == 3
    assert settings.model_image == "env:1"
    assert settings.peering is None


def test_namespaces_from_the_environment_are_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLIPPER_OPERATOR_NAMESPACES", "team-a, team-b")
    monkeypatch.setenv("CLIPPER_OPERATOR_PEERING", "clipper")
    assert settings_from(parse(), OperatorSettings).namespaces == ("team-a", "team-b")
    assert settings_from(parse(), OperatorSettings).peering == "clipper"
    standalone = settings_from(parse("--all-namespaces", "--standalone"), OperatorSettings)
    assert (standalone.namespaces, standalone.peering) == ((), None)


def test_one_cannot_watch_some_namespaces_and_all_of_them() -> None:
    with pytest.raises(SystemExit):
        parse("--namespace", "a", "--all-namespaces")


def test_invalid_settings_exit_2_with_the_flag_named() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clipper", "operator", "--workers", "0"],
        capture_output=True, text=True, timeout=scaled(60), check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "invalid --workers" in result.stderr
    result = subprocess.run(  # from the environment, as the chart sets it
        [sys.executable, "-m", "clipper", "operator"],
        env={**os.environ, "CLIPPER_OPERATOR_IMAGE_PULL_POLICY": "Sometimes"},
        capture_output=True, text=True, timeout=scaled(60), check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "invalid --image-pull-policy: Input should be 'Always', 'IfNotPresent'" in (
        result.stderr
    )


def test_manifests_print_a_yaml_stream_for_kubectl() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clipper", "operator", "manifests", "--install-namespace", "ops",
         "--model-image", "registry.example/model:1"],
        capture_output=True, text=True, timeout=scaled(60), check=True,
    )  # fmt: skip
    docs = list(yaml.safe_load_all(result.stdout))
    deployment = docs[-1]
    assert deployment["metadata"]["namespace"] == "ops"
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["CLIPPER_OPERATOR_MODEL_IMAGE"] == "registry.example/model:1"
