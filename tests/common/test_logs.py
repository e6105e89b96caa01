"""The shared log format: one JSON object per line, with the object a line is about."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator

import pytest

from clipper.common import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The process's handler, configured as text and switched to JSON, writing to a
    buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    logs.configure("DEBUG", stream=buffer)
    logs.reconfigure("json")
    yield buffer
    for handler in list(root.handlers):
        if getattr(handler, "_clipper", False):
            root.removeHandler(handler)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_every_line_is_one_json_object_with_time_level_logger_and_message(
    captured: io.StringIO,
) -> None:
    logging.getLogger("clipper.x").info("hello %s", "there")
    logging.getLogger("clipper.x").debug("kept: the level survives a change of format")
    (first, second) = lines(captured)
    assert first["level"] == "INFO"
    assert first["logger"] == "clipper.x"
    assert first["message"] == "hello there"
    assert str(first["time"]).endswith("Z")
    assert "object" not in first
    assert second["level"] == "DEBUG"


def test_the_object_a_line_is_about_is_a_field(captured: io.StringIO) -> None:
    extra = logs.about("ModelDeployment", "team-a", "digits")
    logging.getLogger("clipper.operator").info("rolled back", extra=extra)
    (line,) = lines(captured)
    assert line["object"] == {"kind": "ModelDeployment", "namespace": "team-a", "name": "digits"}


def test_kopfs_object_loggers_get_the_same_field(captured: io.StringIO) -> None:
    """kopf marks its object loggers' records with ``k8s_ref`` (see kopf's loggers)."""
    ref = {"apiVersion": "clipper.dev/v1alpha1", "kind": "ClipperApp", "name": "digits",
           "namespace": "team-a", "uid": "1"}  # fmt: skip
    logging.getLogger("kopf.objects").warning("handler failed", extra={"k8s_ref": ref})
    (line,) = lines(captured)
    assert line["object"] == {"kind": "ClipperApp", "namespace": "team-a", "name": "digits"}
    assert line["level"] == "WARNING"


def test_pythons_warnings_are_lines_of_the_same_format(captured: io.StringIO) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    (line,) = lines(captured)
    assert line["logger"] == "py.warnings"
    assert "DeprecationWarning: deprecated thing" in str(line["message"])


def test_a_traceback_is_one_field_of_one_line(captured: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("clipper.x").exception("failed")
    (line,) = lines(captured)
    assert "ValueError: boom" in str(line["exc_info"])


def test_no_format_asked_keeps_the_one_configured(captured: io.StringIO) -> None:
    logs.reconfigure(None)
    logging.getLogger("clipper.x").info("still json")
    assert lines(captured)[0]["message"] == "still json"
    logs.reconfigure("text")
    logging.getLogger("clipper.x").info("now text")
    assert captured.getvalue().splitlines()[-1].endswith("INFO clipper.x [-] now text")
