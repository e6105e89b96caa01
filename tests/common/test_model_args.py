"""A VersionTemplate becomes a command line that ``clipper model serve`` accepts."""

from __future__ import annotations

import argparse

import pytest

from clipper.common.api.modeldeployment import VersionTemplate
from clipper.common.model_args import serve_args, serve_env
from clipper.model_wrappers.cli import register
from clipper.model_wrappers.settings import ModelSettings, ServerSettings


def _parse(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["model", "serve", *args])


def test_full_template_round_trips_through_the_model_server_flags() -> None:
    template = VersionTemplate.model_validate(
        {
            "framework": "pytorch",
            "modelUri": "mlp.pt",
            "factory": "pkg.mod:make",
            "device": "cuda",
            "cpuFallback": True,
            "threads": 2,
            "maxConcurrency": 3,
            "input": {"name": "pixels", "datatype": "FP32", "shape": [8, 8]},
            "args": ["--grace-period-s", "5"],
            "env": [{"name": "OMP_PROC_BIND", "value": "true"}],
        }
    )
    args = serve_args(
        template, name="mlp", version="v2", port=9001, host="0.0.0.0", metrics_port=9090
    )
    ns = vars(_parse(args))
    assert (ns["framework"], ns["uri"], ns["name"], ns["version"]) == (
        "pytorch",
        "mlp.pt",
        "mlp",
        "v2",
    )
    assert (ns["host"], ns["port"], ns["metrics_port"]) == ("0.0.0.0", 9001, 9090)
    assert (ns["factory"], ns["device"], ns["threads"], ns["max_concurrency"]) == (
        "pkg.mod:make",
        "cuda",
        2,
        3,
    )
    assert (ns["input_name"], ns["input_datatype"]) == ("pixels", "FP32")
    assert ns["grace_period_s"] == 5
    settings = ModelSettings(**{k: v for k, v in ns.items() if k in ModelSettings.model_fields})
    assert settings.input_shape == (-1, 8, 8)
    assert settings.cpu_fallback is True
    assert serve_env(template) == {"OMP_PROC_BIND": "true"}


@pytest.mark.parametrize(
    ("uri", "override", "expected"),
    [
        ("a.joblib", None, "a.joblib"),
        ("a.joblib", "/abs/a.joblib", "/abs/a.joblib"),
        (None, None, None),
    ],
)
def test_model_uri_override(uri: str | None, override: str | None, expected: str | None) -> None:
    template = VersionTemplate.model_validate({"framework": "sklearn", "modelUri": uri})
    ns = vars(_parse(serve_args(template, name="m", version="1", port=1, model_uri=override)))
    assert ns.get("uri") == expected
    ServerSettings(**{k: v for k, v in ns.items() if k in ServerSettings.model_fields})


def test_no_cpu_fallback_unless_the_template_asks_for_it() -> None:
    template = VersionTemplate.model_validate({"framework": "onnx", "modelUri": "m.onnx"})
    ns = vars(_parse(serve_args(template, name="m", version="1", port=1)))
    assert "cpu_fallback" not in ns
    assert (
        ModelSettings(
            **{k: v for k, v in ns.items() if k in ModelSettings.model_fields}
        ).cpu_fallback
        is False
    )
