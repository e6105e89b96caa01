"""make_policy and parameters: every mistake is a ConfigError that says what to fix."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import ConfigError
from clipper.common.routing import AppConfig, SelectionConfig
from clipper.frontend.selection import (
    POLICIES,
    EpsilonGreedy,
    Exp3,
    Exp4,
    Fixed,
    Thompson,
    make_policy,
)


@pytest.mark.parametrize(
    ("type_", "cls"),
    [
        ("exp3", Exp3),
        ("exp4", Exp4),
        ("epsilon_greedy", EpsilonGreedy),
        ("thompson", Thompson),
        ("fixed", Fixed),
    ],
)
def test_make_policy_by_type(type_: str, cls: type) -> None:
    policy = make_policy(SelectionConfig(type=type_), ["a", "b"], seed=1)  # type: ignore[arg-type]
    assert type(policy) is cls
    assert policy.name == type_
    assert policy.models == ("a", "b")


def test_the_default_app_gets_exp3_with_its_defaults() -> None:
    policy = make_policy(AppConfig(name="digits").selection, ["a", "b", "c"])
    assert isinstance(policy, Exp3)
    assert policy.params.gamma == 0.1
    assert policy.params.loss == "zero_one"
    assert policy.params.max_contexts == 10_000


def test_params_reach_the_policy() -> None:
    config = SelectionConfig(
        type="exp3", params={"gamma": 0.3, "eta": 0.5, "max_contexts": 7, "loss": "absolute"}
    )
    policy = make_policy(config, ["a", "b"])
    assert (policy.params.gamma, policy.params.eta, policy.params.max_contexts) == (0.3, 0.5, 7)
    assert policy.loss(np.array([1.0]), 1.25) == 0.25


def test_loss_scale_param() -> None:
    policy = make_policy(
        SelectionConfig(type="exp4", params={"loss": "squared", "loss_scale": 10}), ["a"]
    )
    assert policy.loss(np.array([0.0]), 5.0) == 0.25


@pytest.mark.parametrize(
    ("type_", "params", "message"),
    [
        ("exp3", {"gama": 0.1}, r"'gama': Extra inputs are not permitted .*accepts: eta, gamma"),
        ("exp3", {"gamma": 0}, r"'gamma': Input should be greater than 0"),
        ("exp3", {"gamma": 1.5}, r"'gamma': Input should be less than or equal to 1"),
        ("exp4", {"eta": -1}, r"'eta': Input should be greater than 0"),
        ("exp4", {"output": "probabilities"}, r"'output': Input should be 'auto'"),
        ("epsilon_greedy", {"epsilon": "lots"}, r"'epsilon': Input should be a valid number"),
        ("thompson", {"prior_beta": 0}, r"'prior_beta'"),
        ("fixed", {"loss": "hinge"}, r"'loss': Input should be 'zero_one'"),
        ("exp3", {"max_contexts": 0}, r"'max_contexts'"),
        ("exp3", {"loss_scale": 0}, r"'loss_scale'"),
    ],
)
def test_invalid_params_are_config_errors(type_: str, params: dict, message: str) -> None:
    config = SelectionConfig(type=type_, params=params)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message) as info:
        make_policy(config, ["a", "b"])
    assert info.value.location == "selection.params"
    assert f"the {type_} policy" in info.value.message


def test_fixed_model_must_be_one_of_the_apps() -> None:
    with pytest.raises(ConfigError, match=r"'c' is not one of the app's models \['a', 'b'\]"):
        make_policy(SelectionConfig(type="fixed", params={"model": "c"}), ["a", "b"])


def test_unknown_type_is_a_config_error() -> None:
    config = SelectionConfig.model_construct(type="ucb", params={})  # bypasses validation
    with pytest.raises(ConfigError, match="unknown policy 'ucb'; expected one of exp3, exp4"):
        make_policy(config, ["a"])


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_param_is_documented(name: str) -> None:
    fields = POLICIES[name].Params.model_fields
    undocumented = [param for param, field in fields.items() if not field.description]
    assert not undocumented


@pytest.mark.parametrize("name", list(POLICIES))
@pytest.mark.parametrize("loss", [-0.1, 1.1, float("nan")])
def test_losses_outside_the_unit_interval_are_refused(name: str, loss: float) -> None:
    policy = POLICIES[name](["a", "b"], seed=0)
    selection = policy.select("")
    with pytest.raises(ValueError, match="must be in"):
        policy.update("", selection, dict.fromkeys(selection.models, loss))
