"""The CRDs' CEL validation rules, mirrored in Python for local mode.

The API server evaluates each ``x-kubernetes-validations`` rule; without a cluster
we evaluate a Python mirror of it instead. Each mirror is registered under the
exact CEL text it mirrors, and the message and ``fieldPath`` of an error come from
the CRD itself, so a user sees the same words from ``clipper run`` as from
``kubectl apply``. A CRD rule without a mirror is an error in this module (and a
failing test), so a rule cannot be added to a CRD and forgotten here.

A mirror takes the node the rule sits on (CEL's ``self``) and returns whether the
rule holds. Rules run only on objects that passed the schema. The API server also
checks each ``default`` against the rules of its node *without* defaulting inside
it (``rollout: {}`` has no ``strategy`` there), so rules guard optional fields with
``has()`` and mirrors with ``.get()``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

from clipper.common.api import crds
from clipper.common.manifests.schema import format_path

_GPU_RULE = (
    "self.framework in ['pytorch', 'onnx', 'python'] || !has(self.resources) || "
    "((!has(self.resources.limits) || !('nvidia.com/gpu' in self.resources.limits)) && "
    "(!has(self.resources.requests) || !('nvidia.com/gpu' in self.resources.requests)))"
)

_URI_PATTERN = (
    "^(file://|image:///|pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[^#]+$|https?://[^/#]+"
    "|s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/[^#]+)[^#]*(#sha256=[0-9a-fA-F]{64})?$"
)
_URI_SEGMENTS = "[^:/]//|/[.][.]?(/|#|$)"
"""An empty, ``.`` or ``..`` path segment (the ``//`` after a scheme is not one)."""
_URI_RULE = (
    "!has(self.modelUri) || !self.modelUri.contains('://') || "
    f"(self.modelUri.matches('{_URI_PATTERN}') && "
    f"!self.modelUri.matches('{_URI_SEGMENTS}'))"
)


_SHARED_STATE_RULE = (
    "!has(self.frontend) || !has(self.frontend.workers) || self.frontend.workers == 1 "
    "|| (has(self.state) && has(self.state.backend) && self.state.backend == 'redis')"
)
"""Several frontend worker processes must share their selection state (issue 15)."""


def _storage_uri(spec: dict[str, Any]) -> bool:
    uri = spec.get("modelUri", "")
    if "://" not in uri:
        return True
    return bool(re.search(_URI_PATTERN, uri)) and not re.search(_URI_SEGMENTS, uri)


def _no_gpu(spec: dict[str, Any]) -> bool:
    if spec["framework"] in ("pytorch", "onnx", "python"):
        return True
    resources = spec.get("resources", {})
    return all("nvidia.com/gpu" not in resources.get(group, {}) for group in ("limits", "requests"))


def _sorted(values: list[int]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(values))


Mirror = Callable[[Any], bool]

_RESERVED_KEYS = "self.all(k, !k.startsWith('clipper.dev/'))"


def _unreserved(mapping: dict[str, str]) -> bool:
    """No key under ``clipper.dev/``, the prefix of the operator's own labels."""
    return not any(key.startswith("clipper.dev/") for key in mapping)


POLICY_PARAMETERS: dict[str, tuple[str, ...]] = {
    "gamma": ("exp3",),
    "eta": ("exp3", "exp4"),
    "output": ("exp4",),
    "agreement_rtol": ("exp4",),
    "agreement_atol": ("exp4",),
    "epsilon": ("epsilon_greedy",),
    "prior_alpha": ("thompson",),
    "prior_beta": ("thompson",),
    "bernoulli": ("thompson",),
    "model": ("fixed",),
}
"""ClipperApp ``selectionPolicy.parameters`` that belong to some policies only (the
rest -- loss, loss_scale, max_contexts -- every policy takes). The CRD has one CEL
rule per entry; the frontend's parameter models agree (tests/frontend/selection)."""


def _policy_rule(parameter: str, policies: tuple[str, ...]) -> tuple[str, Mirror]:
    """The CEL text of ``parameter``'s rule and its mirror."""
    if len(policies) == 1:
        allowed = f"self.type == '{policies[0]}'"
    else:
        allowed = "self.type in [" + ", ".join(f"'{p}'" for p in policies) + "]"
    text = f"!has(self.parameters) || !has(self.parameters.{parameter}) || {allowed}"

    def mirror(policy: dict[str, Any]) -> bool:
        given = policy.get("parameters") or {}
        return parameter not in given or policy.get("type", "exp3") in policies

    return text, mirror


MIRRORS: dict[tuple[str, str, str], Mirror] = {
    ("ModelDeployment", "", "size(self.metadata.name) + size(self.spec.version) <= 62"): (
        lambda o: len(o["metadata"]["name"]) + len(o["spec"]["version"]) <= 62
    ),
    ("ModelDeployment", "spec", "self.framework == 'noop' || has(self.modelUri)"): (
        lambda s: s["framework"] == "noop" or "modelUri" in s
    ),
    ("ModelDeployment", "spec", _URI_RULE): _storage_uri,
    ("ModelDeployment", "spec", "!has(self.method) || self.framework == 'sklearn'"): (
        lambda s: "method" not in s or s["framework"] == "sklearn"
    ),
    ("ModelDeployment", "spec", "!has(self.factory) || self.framework == 'pytorch'"): (
        lambda s: "factory" not in s or s["framework"] == "pytorch"
    ),
    (
        "ModelDeployment",
        "spec",
        "!has(self.device) || self.device != 'cuda' || "
        "self.framework in ['pytorch', 'onnx', 'python']",
    ): lambda s: s.get("device") != "cuda" or s["framework"] in ("pytorch", "onnx", "python"),
    ("ModelDeployment", "spec", _GPU_RULE): _no_gpu,
    (
        "ModelDeployment",
        "spec.rollout",
        "!has(self.strategy) || self.strategy != 'Canary' || "
        "(has(self.steps) && size(self.steps) > 0)",
    ): lambda r: r.get("strategy") != "Canary" or bool(r.get("steps")),
    (
        "ModelDeployment",
        "spec.rollout",
        "(has(self.strategy) && self.strategy == 'Canary') || !has(self.steps)",
    ): lambda r: r.get("strategy") == "Canary" or "steps" not in r,
    ("ModelDeployment", "spec.rollout.steps", "self.map(s, s.weight).isSorted()"): (
        lambda steps: _sorted([s["weight"] for s in steps])
    ),
    (
        "ModelDeployment",
        "spec.rollout.shadow",
        "!has(self.minSamples) || !has(self.maxSamples) || self.minSamples <= self.maxSamples",
    ): lambda t: t.get("minSamples", 30) <= t.get("maxSamples", 2000),
    (
        "ModelDeployment",
        "spec.rollout",
        "!has(self.keepBest) || self.keepBest == 0 || (self.keepBest >= 2 && "
        "has(self.strategy) && self.strategy == 'Shadow')",
    ): lambda r: (
        r.get("keepBest", 0) == 0 or (r["keepBest"] >= 2 and r.get("strategy") == "Shadow")
    ),
    **{
        (kind, f"{where}.metadata.{part}", _RESERVED_KEYS): _unreserved
        for kind, where in (
            ("ModelDeployment", "spec.podTemplate"),
            ("ClipperApp", "spec.frontend.podTemplate"),
        )
        for part in ("labels", "annotations")
    },
    ("ClipperApp", "spec", "has(self.models) != has(self.modelSelector)"): (
        lambda s: ("models" in s) != ("modelSelector" in s)
    ),
    ("ClipperApp", "spec", _SHARED_STATE_RULE): (
        lambda s: (
            s.get("frontend", {}).get("workers", 1) == 1
            or s.get("state", {}).get("backend") == "redis"
        )
    ),
    (
        "ClipperApp",
        "spec.frontend.service",
        "!has(self.httpPort) || !has(self.grpcPort) || self.httpPort != self.grpcPort",
    ): lambda svc: "httpPort" not in svc or svc.get("httpPort") != svc.get("grpcPort"),
    (
        "ClipperApp",
        "spec.state",
        "!has(self.backend) || self.backend != 'redis' || has(self.url) != has(self.secretRef)",
    ): lambda st: st.get("backend") != "redis" or (("url" in st) != ("secretRef" in st)),
    (
        "ClipperApp",
        "spec.state",
        "(has(self.backend) && self.backend == 'redis') || "
        "(!has(self.url) && !has(self.secretRef))",
    ): lambda st: st.get("backend") == "redis" or ("url" not in st and "secretRef" not in st),
    **{
        ("ClipperApp", "spec.selectionPolicy", text): mirror
        for text, mirror in (_policy_rule(p, t) for p, t in POLICY_PARAMETERS.items())
    },
}
"""The Python mirror of each CEL rule, by (kind, schema path, rule text)."""


def cel_rules(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Every CEL rule of ``kind``'s schema with the property path it sits on."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(node: dict[str, Any], path: str) -> None:
        found.extend((path, rule) for rule in node.get("x-kubernetes-validations", []))
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}" if path else name)

    walk(crds.schema(kind), "")
    return found


def _node(obj: Any, path: str) -> Iterator[Any]:
    for part in path.split(".") if path else []:
        if not isinstance(obj, dict) or part not in obj:
            return
        obj = obj[part]
    yield obj


def check(kind: str, obj: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field path, message)`` for every CEL rule of ``kind`` that ``obj`` breaks."""
    problems = []
    for path, rule in cel_rules(kind):
        mirror = MIRRORS.get((kind, path, rule["rule"]))
        if mirror is None:
            raise NotImplementedError(f"{kind} {path or '(root)'}: no mirror for {rule['rule']!r}")
        for node in _node(obj, path):
            if not mirror(node):
                where = path + rule.get("fieldPath", "")
                problems.append(
                    (format_path(where.split(".")) if where else "(object)", rule["message"])
                )
    return problems
