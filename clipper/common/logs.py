"""Logging set-up shared by every process, with request ids in each line.

A request id lives in a context variable: the transport that receives a request
sets it, and every log record emitted while serving that request (in the same
asyncio task, or a task spawned from it) carries it. ``configure`` installs one
handler on the root logger, in plain text or one JSON object per line; every
library's loggers (kopf's, grpc's, aiohttp's) propagate to it, so a process's
whole output has one format and a log pipeline can parse every line.

A line about a Kubernetes object carries it as fields, not only in its text:
``log.info(..., extra=about(kind, namespace, name))`` (kopf's object loggers do
the same with their ``k8s_ref``), which the JSON format writes as ``object``, so
a log query can select one object's history.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any, Literal, TextIO

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

LogFormat = Literal["text", "json"]


def about(kind: str, namespace: str, name: str) -> dict[str, Any]:
    """``extra`` for a log record about one Kubernetes object."""
    return {"k8s_object": {"kind": kind, "namespace": namespace, "name": name}}


def _object(record: logging.LogRecord) -> dict[str, Any] | None:
    found = getattr(record, "k8s_object", None)
    if isinstance(found, dict):
        return found
    ref = getattr(record, "k8s_ref", None)  # kopf's object loggers
    if isinstance(ref, dict):
        return {key: ref.get(key) for key in ("kind", "namespace", "name")}
    return None


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the request id
    and Kubernetes object when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (rid := getattr(record, "request_id", "-")) != "-":
            entry["request_id"] = rid
        if (obj := _object(record)) is not None:
            entry["object"] = obj
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure(
    level: str | int = "INFO", json_format: bool = False, stream: TextIO | None = None
) -> None:
    """Install the process's single log handler, writing to ``stream`` (stderr by
    default); idempotent: a second call replaces the first, so a subcommand may
    switch to the format its flags ask for."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_clipper", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._clipper = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    logging.captureWarnings(True)  # Python's warnings too: every line in one format


def reconfigure(log_format: LogFormat | None) -> None:
    """Switch the installed handler to ``log_format``, keeping the level; None keeps
    the format ``clipper --log-json`` chose."""
    if log_format is None:
        return
    root = logging.getLogger()
    installed = [h for h in root.handlers if getattr(h, "_clipper", False)]
    stream = getattr(installed[0], "stream", None) if installed else None
    configure(root.level, json_format=log_format == "json", stream=stream)
