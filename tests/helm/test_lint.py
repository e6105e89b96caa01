"""``helm lint --strict`` with the default and non-default values, and the values
schema rejecting bad values with a message that names the field."""

from __future__ import annotations

import pytest

from clipper.testing.k8s_helm import CHART, Helm

CUSTOM = CHART / "ci" / "custom-values.yaml"


def test_lint_strict_with_default_values(helm: Helm) -> None:
    result = helm.run("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout, result.stdout


def test_lint_strict_with_non_default_values(helm: Helm) -> None:
    result = helm.run("lint", "--strict", str(CHART), "--values", str(CUSTOM))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("defaultImages.pullPolicy=Sometimes", "pullPolicy"),
        ("securityContext.allowPrivilegeEscalation=true", "allowPrivilegeEscalation"),
        ("podSecurityContext.runAsNonRoot=false", "runAsNonRoot"),
        ("watchNamespaces[0]=Not_A_Namespace", "watchNamespaces"),
        ("replicas=2", "replicas"),  # not a value: the operator runs standalone
    ],
)
def test_schema_rejects_bad_values(helm: Helm, setting: str, field: str) -> None:
    result = helm.run("lint", "--strict", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0, result.stdout
    assert field in result.stdout + result.stderr
