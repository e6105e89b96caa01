"""Clipper-on-Kubernetes: low-latency model serving after Clipper (NSDI 2017).

The package is layered. ``clipper.common`` (errors, the Open Inference Protocol
wire types, the routing table, manifests) sits at the bottom; the three
components -- ``clipper.model_wrappers``, ``clipper.frontend`` and
``clipper.operator`` -- build on it and never import one another; ``clipper.local``
(the no-cluster runner) and ``clipper.cli`` sit on top and start the components as
processes. ``lint-imports`` enforces this (see pyproject.toml).
"""

__version__ = "0.1.0"
