"""How ``clipper run`` runs: one settings model, filled from its flags.

What is served comes from the manifests; these are the run's own knobs. The
frontend and the model servers inherit the environment, so their own settings
(``CLIPPER_FRONTEND_*``, ``CLIPPER_MODEL_*``) can be given that way.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class RunSettings(BaseModel):
    """The settings of one ``clipper run``."""

    model_config = ConfigDict(use_attribute_docstrings=True, frozen=True, extra="forbid")

    paths: tuple[Path, ...]
    """Manifest files and folders (``-f``), as ``kubectl apply -f`` takes them."""

    host: str = "127.0.0.1"
    """Address the frontend binds (model servers always bind 127.0.0.1)."""

    http_port: int | None = Field(default=None, ge=0, le=65535)
    """Frontend REST port; default: the first ClipperApp's spec.frontend.service.httpPort
    (8080). 0 picks a free one."""

    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    """Frontend gRPC port; default: the first ClipperApp's spec.frontend.service.grpcPort
    (8081). 0 picks a free one."""

    watch: bool = True
    """Apply a manifest file again whenever it is saved."""

    stop_grace_s: float = Field(default=30.0, ge=0)
    """How long a child may take to stop after SIGTERM before it is killed."""

    route_grace_s: float = Field(default=1.0, ge=0)
    """How long a replica that left the routes keeps running before SIGTERM, so that
    the frontend has stopped sending it work."""

    restart_backoff_s: float = Field(default=1.0, gt=0)
    """The first wait before a crashed child (the frontend, a model server) is
    started again; it doubles with each further crash."""

    restart_backoff_max_s: float = Field(default=30.0, gt=0)
    """The longest wait before a crashed child is started again."""

    restart_healthy_after_s: float = Field(default=10.0, ge=0)
    """A child that was healthy this long before it crashed is restarted after the
    first wait again, not a doubled one (as a kubelet resets CrashLoopBackOff)."""

    global_args: tuple[str, ...] = ()
    """``clipper`` flags every child gets (the log level and format)."""
