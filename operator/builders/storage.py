"""How a version's model reaches its pod, by the scheme of its ``modelUri``.

- ``http(s)://`` and ``s3://``: an init container (``clipper model fetch``, in the
  model server's own image, so nothing else must be pulled or trusted) downloads
  the file into an ``emptyDir`` before the model container starts, bounded by the
  emptyDir's ``sizeLimit``; the model container mounts it read-only and loads the
  local copy. A fetch that fails exits 1 with the cause as its last ERROR line,
  which ``FallbackToLogsOnError`` turns into the termination message that
  ``observe.py`` quotes: the version is failing and the rollout rolls back.
  S3 credentials come from a Secret through ``envFrom``: never from the CR.
- ``pvc://CLAIM/PATH``: the claim is mounted read-only and the file is read in
  place. No init container: a copy would double the disk a large model takes and
  add a step that can fail, for nothing -- the volume is already local to the pod.
- ``image:///PATH``: the model is baked into the image; the path is passed as is.
- anything else (a path, ``file://``, ``module:function``): passed as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from clipper.common import api
from clipper.common.errors import ConfigError
from clipper.common.storage import (
    DEFAULT_MAX_BYTES,
    HttpUri,
    ImageUri,
    LocalPath,
    PvcUri,
    S3Uri,
    parse_uri,
)
from clipper.operator.builders.meta import CONTAINER_SECURITY

FETCHED_DIR = "/mnt/models"
PVC_DIR = "/mnt/pvc"
STORE_VOLUME = "model-store"
PVC_VOLUME = "model-pvc"
FETCH_CONTAINER = "fetch-model"
FETCH_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
"""A fetch streams in 1 MiB chunks: its memory does not grow with the model."""


@dataclass
class ModelSource:
    """What the pod needs for its model: the URI the server loads, and the parts to add."""

    uri: str | None
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    """The model container's volume mounts."""
    init_containers: list[dict[str, Any]] = field(default_factory=list)


def model_source(template: api.VersionTemplate, image: str, pull_policy: str) -> ModelSource:
    """The model's place in the pod for ``template``, whose model container runs ``image``."""
    if not template.model_uri or template.framework == "noop":
        return ModelSource(template.model_uri)
    try:
        location = parse_uri(template.model_uri)
    except ConfigError:
        # The CRD's rule refuses what parse_uri does; an object stored before that
        # rule reaches the model server as written, which fails to load it with the
        # reason, and the rollout rolls the version back.
        return ModelSource(template.model_uri)
    if isinstance(location, LocalPath):
        return ModelSource(template.model_uri)
    if isinstance(location, ImageUri):
        return ModelSource(location.path)
    if isinstance(location, PvcUri):
        return ModelSource(
            str(PurePosixPath(PVC_DIR) / location.path),
            volumes=[
                {
                    "name": PVC_VOLUME,
                    "persistentVolumeClaim": {"claimName": location.claim, "readOnly": True},
                }
            ],
            mounts=[{"name": PVC_VOLUME, "mountPath": PVC_DIR, "readOnly": True}],
        )
    return _fetched(template, location, image, pull_policy)


def _fetched(
    template: api.VersionTemplate, location: HttpUri | S3Uri, image: str, pull_policy: str
) -> ModelSource:
    local = f"{FETCHED_DIR}/{location.filename}"
    init: dict[str, Any] = {
        "name": FETCH_CONTAINER,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["clipper", "model", "fetch"],
        "args": [
            "--uri",
            template.model_uri,
            "--dest",
            local,
            "--max-bytes",
            str(DEFAULT_MAX_BYTES),
        ],
        "volumeMounts": [{"name": STORE_VOLUME, "mountPath": FETCHED_DIR}],
        "resources": FETCH_RESOURCES,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": CONTAINER_SECURITY,
    }
    s3 = (template.storage or api.ModelStorage()).s3
    if isinstance(location, S3Uri) and s3 is not None:
        env = {"AWS_ENDPOINT_URL_S3": s3.endpoint, "AWS_REGION": s3.region}
        init["env"] = [{"name": k, "value": v} for k, v in env.items() if v]
        if s3.secret_name:
            init["envFrom"] = [{"secretRef": {"name": s3.secret_name}}]
    return ModelSource(
        local,
        volumes=[{"name": STORE_VOLUME, "emptyDir": {"sizeLimit": str(DEFAULT_MAX_BYTES)}}],
        mounts=[{"name": STORE_VOLUME, "mountPath": FETCHED_DIR, "readOnly": True}],
        init_containers=[init],
    )
