"""Build an app's policy from its ``SelectionConfig``."""

from __future__ import annotations

from collections.abc import Sequence

from clipper.common.errors import ConfigError
from clipper.common.routing import SelectionConfig
from clipper.frontend.selection.epsilon_greedy import EpsilonGreedy
from clipper.frontend.selection.exp3 import Exp3
from clipper.frontend.selection.exp4 import Exp4
from clipper.frontend.selection.fixed import Fixed
from clipper.frontend.selection.policy import Policy
from clipper.frontend.selection.thompson import Thompson

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls for cls in (Exp3, Exp4, EpsilonGreedy, Thompson, Fixed)
}


def make_policy(config: SelectionConfig, models: Sequence[str], seed: int | None = None) -> Policy:
    """The policy ``config.type`` over ``models``; bad parameters raise ``ConfigError``."""
    try:
        cls = POLICIES[config.type]
    except KeyError:
        raise ConfigError(
            f"unknown policy '{config.type}'; expected one of {', '.join(POLICIES)}",
            location="selection.type",
        ) from None
    return cls(models, config.params, seed=seed)
