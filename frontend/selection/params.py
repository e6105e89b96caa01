"""Policy parameters: one pydantic model per policy, validated once, at start-up.

``SelectionConfig.params`` is a free-form mapping in the routing table, so each
policy declares the parameters it understands as a frozen pydantic model with
``extra="forbid"``: a typo (``gama``) or an out-of-range value is a
``ConfigError`` naming the parameter and listing the valid ones, instead of a
silently ignored setting. The parameters every policy shares live here; each
policy module extends ``PolicyParams`` with its own.

This is defence in depth: the ClipperApp CRD describes the same parameters (their
types and bounds, and per policy type which ones apply, as CEL rules), so a bad one
is rejected at ``kubectl apply`` or by local mode before any frontend sees it, with
the field path. tests/frontend/selection/test_params_crd.py keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clipper.common.errors import ConfigError
from clipper.frontend.selection.losses import LossName

P = TypeVar("P", bound="PolicyParams")


class PolicyParams(BaseModel):
    """Parameters that every policy accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    loss: LossName = "zero_one"
    """How feedback turns a label into a loss in [0, 1]: ``zero_one`` for class labels,
    ``absolute`` or ``squared`` error for regression."""
    loss_scale: float = Field(default=1.0, gt=0)
    """``absolute``/``squared`` only: the error that counts as a full loss of 1."""
    max_contexts: int = Field(default=10_000, ge=1)
    """How many contexts (e.g. ``X-Clipper-Context: user-42``) keep their own state;
    the least recently used one is forgotten beyond this. The global context ``""``
    is always kept and does not count."""


def parse_params(cls: type[P], params: Mapping[str, Any], policy: str) -> P:
    """Validate ``params`` for ``policy``; a bad one is a ``ConfigError`` saying which."""
    try:
        return cls.model_validate(dict(params))
    except ValidationError as exc:
        known = ", ".join(sorted(cls.model_fields))
        problems = "; ".join(
            f"'{'.'.join(str(p) for p in err['loc'])}': {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"invalid parameters for the {policy} policy: {problems} (it accepts: {known})",
            location="selection.params",
        ) from None
