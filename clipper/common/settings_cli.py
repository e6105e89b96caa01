"""Command-line flags generated from pydantic-settings models.

Every process (model server, frontend, operator) is configured by a
pydantic-settings model whose fields are also environment variables
(``<env_prefix><FIELD>``). This module turns each field into a flag with the
field's docstring as its help, so flags, environment variables and docs never
drift apart. An unset flag is left out of the namespace (``argparse.SUPPRESS``),
so the environment, then the field's default, decides; a flag given wins.
"""

from __future__ import annotations

import argparse
import logging
import types
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

S = TypeVar("S", bound=BaseModel)


def field_help(settings: type[BaseModel], name: str) -> str:
    """A field's docstring, its environment variable and its default, on one line."""
    field = settings.model_fields[name]
    text = " ".join((field.description or "").split())
    env = f"{settings.model_config.get('env_prefix', '')}{name.upper()}"
    default = "" if field.is_required() else f"; default {_show(field.default)}"
    return f"{text} (env {env}{default})"


def add_settings_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    settings: type[BaseModel],
    skip: Iterable[str] = (),
) -> None:
    """One ``--field-name`` flag per field of ``settings`` (but those in ``skip``)."""
    for name, field in settings.model_fields.items():
        if name in skip:
            continue
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=argparse.SUPPRESS,  # unset flags leave the environment in charge
            choices=_choices(field),
            type={int: int, float: float}.get(_scalar(field.annotation), str),
            help=field_help(settings, name),
        )


def settings_from(args: argparse.Namespace, settings: type[S]) -> S:
    """``settings`` from the flags given, over the environment, over the defaults."""
    given = {k: v for k, v in vars(args).items() if k in settings.model_fields}
    return settings(**given)


def log_invalid(log: logging.Logger, error: ValidationError) -> int:
    """Log each invalid flag as ``invalid --name: why``; the exit code for bad flags."""
    for item in error.errors():
        field = "-".join(str(part) for part in item["loc"]).replace("_", "-")
        log.error("invalid --%s: %s", field, item["msg"])
    return 2


def _choices(field: FieldInfo) -> list[Any] | None:
    annotation = field.annotation
    for candidate in (annotation, *typing.get_args(annotation)):  # Literal, or Literal | None
        if typing.get_origin(candidate) is typing.Literal:
            return list(typing.get_args(candidate))
    return None


def _scalar(annotation: Any) -> Any:
    """``int`` for ``int | None`` and the like; the annotation itself otherwise."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if args else str
    return annotation


def _show(value: object) -> str:
    return "unset" if value is None else repr(value)
