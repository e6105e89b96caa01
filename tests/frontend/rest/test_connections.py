"""The REST server's connection bound fits the open-file limit."""

from __future__ import annotations

import logging
import resource
from collections.abc import Iterator

import pytest

from clipper.frontend.rest.connections import (
    FD_RESERVE,
    MAX_REFUSING,
    raise_open_files_limit,
    usable_connections,
)


def test_a_bound_that_fits_the_file_limit_is_kept() -> None:
    assert usable_connections(1000, 1000 + FD_RESERVE + MAX_REFUSING) == 1000


def test_a_bound_past_the_file_limit_is_lowered_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        usable = usable_connections(10_000, 1024)
    assert usable == 1024 - FD_RESERVE - MAX_REFUSING
    assert "does not fit the open-file limit 1024" in caplog.text


@pytest.fixture
def lowered_soft_limit() -> Iterator[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard open-file limit ({hard}) leaves no room to lower the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_file_limit_is_raised_to_the_hard_one(lowered_soft_limit: int) -> None:
    raised = raise_open_files_limit()
    assert raised > 1024
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == raised
    if lowered_soft_limit != resource.RLIM_INFINITY:
        assert raised == lowered_soft_limit
