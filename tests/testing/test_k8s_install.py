"""The one "cached build missing" rule every build-backed fixture goes through."""

from __future__ import annotations

import pytest

from clipper.testing.k8s_install import require_build


def test_a_found_build_is_returned() -> None:
    assert require_build("the-binary", "", "helm", "helm") == "the-binary"


def test_a_missing_build_skips_with_the_make_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=r"helm is not built \(no STAMP\): run `make helm`"
    ):
        require_build(None, "no STAMP", "helm", "helm")


def test_a_missing_build_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"S3 server is not built .*`make s3server`"):
        require_build(None, "no STAMP", "the test S3 server", "s3server")
