"""A ClipperApp's ``spec.frontend`` knobs reach ``clipper frontend`` unchanged, and
every value the CRD accepts is one the frontend accepts (no crash-loop on flags)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from clipper.common import api
from clipper.common.api import crds
from clipper.common.frontend_args import frontend_flags
from clipper.common.settings_cli import add_settings_flags, settings_from
from clipper.frontend.settings import FrontendSettings

# CRD field -> FrontendSettings field
KNOBS = {
    "queueCapacity": "queue_capacity",
    "aimdBudgetFraction": "aimd_budget_fraction",
    "feedbackMaxBytes": "feedback_max_bytes",
    "drainDelaySeconds": "drain_delay_s",
    "workers": "workers",
    "grpcServer": "grpc_server",
}
# A cluster needs a drain delay (endpoint propagation); a frontend run by hand does not.
DEFAULTS_DIFFER = {"drainDelaySeconds"}


def parse(flags: list[str]) -> FrontendSettings:
    parser = argparse.ArgumentParser()
    add_settings_flags(parser, FrontendSettings)
    return settings_from(parser.parse_args(flags), FrontendSettings)


def crd_frontend() -> dict[str, Any]:
    spec = crds.schema("ClipperApp")["properties"]["spec"]["properties"]
    return dict(spec["frontend"]["properties"])


def test_the_flags_carry_the_spec_values() -> None:
    spec = api.FrontendSpec.model_validate(
        {
            "queueCapacity": 7,
            "aimdBudgetFraction": 0.25,
            "feedbackMaxBytes": 0,
            "drainDelaySeconds": 12,
            "workers": 3,
            "grpcServer": "python",
        }
    )
    settings = parse(frontend_flags(spec))
    assert settings.queue_capacity == 7
    assert settings.aimd_budget_fraction == 0.25
    assert settings.feedback_max_bytes == 0
    assert settings.drain_delay_s == 12
    assert settings.workers == 3
    assert settings.grpc_server == "python"


@pytest.mark.parametrize("crd_field", sorted(KNOBS))
def test_the_crd_bounds_fit_the_frontend_settings(crd_field: str) -> None:
    node = crd_frontend()[crd_field]
    name = KNOBS[crd_field]
    spec = api.FrontendSpec()
    for edge in ("minimum", "maximum"):
        if edge in node:  # the CRD's extreme values start a frontend
            value = node[edge]
            flags = frontend_flags(spec.model_copy(update={_api_name(crd_field): value}))
            assert getattr(parse(flags), name) == value
    if crd_field not in DEFAULTS_DIFFER:
        assert node["default"] == FrontendSettings.model_fields[name].default


def _api_name(crd_field: str) -> str:
    by_alias = {info.alias: key for key, info in api.FrontendSpec.model_fields.items()}
    return by_alias[crd_field]


def test_every_frontend_knob_of_the_crd_is_passed() -> None:
    flags = frontend_flags(api.FrontendSpec())
    passed = {flag[2:].replace("-", "_") for flag in flags if flag.startswith("--")}
    assert passed == set(KNOBS.values())
    structural = {"replicas", "image", "resources", "service", "podTemplate"}
    assert set(crd_frontend()) - structural == set(KNOBS)
