"""How Clipper's objects look on a cluster: the labels and ports that connect them.

The operator puts these labels on every version's Deployment, pods and headless
Service; the EndpointSlice controller copies a Service's labels onto its slices,
so the frontend's Kubernetes discovery finds each version's ready replicas by
them, and their gRPC port by its name. Both components import them from here
(they may not import each other), so the two ends cannot drift apart.
"""

from __future__ import annotations

LABEL_MODEL = "clipper.dev/model"
"""The ModelDeployment's name, on everything that serves one of its versions."""
LABEL_VERSION = "clipper.dev/version"
"""Next to ``LABEL_MODEL``: the version."""
LABEL_APP = "clipper.dev/app"
"""The ClipperApp's name, on its frontend's Deployment, pods and Service."""

GRPC_PORT_NAME = "grpc"
"""The name of the model server's Open Inference Protocol port on a version's
Service, and so in its EndpointSlices."""
GRPC_PORT = 8001
"""The model server's gRPC port in its container."""


def version_name(model: str, version: str) -> str:
    """The Deployment and headless Service of one version (the CRD keeps it <= 63)."""
    return f"{model}-{version}"
