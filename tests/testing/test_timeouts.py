"""One time scale for every wait: the setting, the waits that use it, and their errors."""

from __future__ import annotations

import pytest

from clipper.testing.processes import wait_for
from clipper.testing.timeouts import SCALE_VARIABLE, scale, scaled
from clipper.testing.waiting import eventually, polls


def test_the_scale_is_1_on_a_quiet_machine_and_3_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SCALE_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert scale() == 1.0
    monkeypatch.setenv("CI", "true")
    assert scale() == 3.0
    assert scaled(15) == 45.0


def test_the_variable_overrides_the_default_in_and_out_of_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv(SCALE_VARIABLE, "1.5")
    assert scaled(10) == 15.0
    monkeypatch.delenv("CI")
    monkeypatch.setenv(SCALE_VARIABLE, "0.5")
    assert scaled(10) == 5.0


@pytest.mark.parametrize("bad", ["fast", "0", "-2", "inf", "nan"])
def test_a_scale_that_is_not_a_positive_number_is_refused_with_what_to_set(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv(SCALE_VARIABLE, bad)
    with pytest.raises(ValueError, match=f"{SCALE_VARIABLE}=.* is not a positive number"):
        scaled(1)


def test_wait_for_scales_its_timeout_and_says_what_it_saw_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SCALE_VARIABLE, "0.01")  # 20 quiet-machine seconds -> 0.2 s
    answers = iter(range(10**6))
    with pytest.raises(TimeoutError) as caught:
        wait_for(lambda: [next(answers)] * 0, timeout=20, what="a non-empty list")
    message = str(caught.value)
    assert message.startswith("timed out after 0.2s waiting for a non-empty list")
    assert message.endswith("last seen: []")


def test_wait_for_shows_the_last_error_of_the_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCALE_VARIABLE, "0.01")

    def refused() -> bool:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(TimeoutError, match=r"waiting for port 1; last seen: ConnectionRefused"):
        wait_for(refused, timeout=20, what="port 1")


def test_wait_for_shows_what_seen_returns_for_a_condition_that_only_says_not_yet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SCALE_VARIABLE, "0.01")
    status = {"phase": "Progressing"}
    with pytest.raises(TimeoutError, match=r"last seen: \{'phase': 'Progressing'\}$"):
        wait_for(lambda: None, timeout=20, what="Ready", seen=lambda: status)


def test_wait_for_returns_the_first_truthy_value() -> None:
    answers = iter([0, "", None, "up"])
    assert wait_for(lambda: next(answers), timeout=30, interval=0) == "up"


PER_TEST_LIMIT = """
def test_limit(request):
    assert request.config.getoption("timeout") == {expected}
"""


@pytest.mark.parametrize(("setting", "expected"), [("3", 300.0), ("0.5", 50.0)])
def test_pytest_timeouts_per_test_limit_is_scaled_too(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, setting: str, expected: float
) -> None:
    monkeypatch.setenv(SCALE_VARIABLE, setting)
    monkeypatch.delenv("PYTEST_TIMEOUT", raising=False)
    pytester.makeini("[pytest]\ntimeout = 100\n")
    pytester.makepyfile(PER_TEST_LIMIT.format(expected=expected))
    result = pytester.runpytest_subprocess("-p", "clipper.testing.plugin")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"clipper: test timeouts scaled by {float(setting):g}*"])


def test_an_explicit_timeout_option_is_taken_as_given(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SCALE_VARIABLE, "3")
    pytester.makeini("[pytest]\ntimeout = 100\n")
    pytester.makepyfile(PER_TEST_LIMIT.format(expected=7.0))
    result = pytester.runpytest_subprocess("-p", "clipper.testing.plugin", "--timeout", "7")
    result.assert_outcomes(passed=1)


async def test_eventually_awaits_a_coroutine_condition_and_fails_like_wait_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([None, 0, "ready"])

    async def check() -> str | int | None:
        return next(answers)

    assert await eventually(check, interval=0) == "ready"
    monkeypatch.setenv(SCALE_VARIABLE, "0.01")
    with pytest.raises(TimeoutError, match=r"waiting for a reply; last seen: 0$"):
        await eventually(lambda: 0, 20, what="a reply")


async def test_polls_runs_its_body_until_the_scaled_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SCALE_VARIABLE, "0.01")  # 10 s -> 0.1 s
    attempts = [attempt async for attempt in polls(10, interval=0.01)]
    # At least the first try, however busy the machine; then it ends by itself.
    assert attempts[0] == 0
    assert attempts == list(range(len(attempts)))
