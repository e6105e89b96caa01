"""An app at run time: its config, selection policy, cache, models and versions.

``ModelRuntime`` picks a version for each query by the versions' traffic
weights, which is how a version swap shifts traffic (the operator moves the
weights; the frontend follows). Versions with no ready replica are skipped
while another version of the model can serve, so a half-rolled-out version
never turns queries into defaults.

A Shadow rollout's candidate (and keepBest's challengers) is no weighted version:
``shadows`` lists them, and ``clipper.frontend.shadow`` mirrors them the queries
that the model's one weighted version answered.

``AppRuntime`` keeps its policy's learned state across routing updates: a
changed model list is handed to ``Policy.set_models`` (new models get a fair
share, the others keep their weights); only a different policy type or
parameters start a fresh policy. Likewise the cache survives unless its own
config changes. The input signature learned from the containers does not: any
update may have swapped the model or version it came from (a new version with
another input shape or datatype), and a stale one would turn every request
valid for the new model into a 400. It is learned again from the new models'
metadata on the next request.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable

from clipper.common.errors import Unavailable
from clipper.common.protocol import pb
from clipper.common.routing import AppConfig
from clipper.frontend.cache import PredictionCache, make_cache
from clipper.frontend.metrics import AppMetrics
from clipper.frontend.routing.versions import VersionRuntime
from clipper.frontend.selection import Policy, Selection, make_policy
from clipper.frontend.signature import Signature

Inherit = Callable[["AppRuntime", list[str], str, str, int], None]
"""(app, contexts, predecessor's arm or "", new arm, bound in pseudo-observations;
0: a fresh start)."""


class ModelRuntime:
    """One model of an app: its versions and their traffic weights."""

    def __init__(
        self,
        name: str,
        versions: list[tuple[VersionRuntime, float]],
        shadows: tuple[VersionRuntime, ...] = (),
    ) -> None:
        self.name = name
        self.versions = [(v, w) for v, w in versions if w > 0]
        self.shadows = shadows if len(self.versions) == 1 else ()
        """Versions mirrored the queries of the one weighted version: a Shadow rollout's
        candidate, keepBest's challengers (``clipper.frontend.shadow``); never picked."""
        self._single = self.versions[0][0] if len(self.versions) == 1 else None
        self._cumulative = list(itertools.accumulate(w for _, w in self.versions))

    @property
    def up(self) -> bool:
        return any(v.up for v, _ in self.versions)

    def pick(self, rng: random.Random) -> VersionRuntime:
        """A version, at random by traffic weight among those that can serve."""
        if self._single is not None:
            return self._single
        if not self.versions:
            raise Unavailable(f"model '{self.name}' has no version with traffic weight")
        version = self._draw(rng, self.versions, self._cumulative)
        if version.up:
            return version
        ready = [(v, w) for v, w in self.versions if v.up]
        if not ready:
            return version  # submitting raises Unavailable with the version's name
        return self._draw(rng, ready, list(itertools.accumulate(w for _, w in ready)))

    @staticmethod
    def _draw(
        rng: random.Random, versions: list[tuple[VersionRuntime, float]], cumulative: list[float]
    ) -> VersionRuntime:
        point = rng.random() * cumulative[-1]
        return versions[min(bisect.bisect_right(cumulative, point), len(versions) - 1)][0]


def arm_keys(models: dict[str, ModelRuntime]) -> dict[str, str]:
    """Each model's arm: ``model@version`` of its version with the most traffic.

    Selection learns per model version: when a rollout moves most of a model's
    traffic to a new version, the model's arm is that version's, which starts fresh
    or, with ``new_version.start: predecessor``, from the old arm's state bounded to
    K pseudo-observations (see ``AppRuntime.update``). While two versions split a
    model's traffic, their answers are credited to the arm of the one with more (the
    rollout compares the versions themselves).
    """
    arms = {}
    for name, model in models.items():
        best = max(model.versions, key=lambda vw: vw[1], default=None)
        arms[name] = name if best is None else best[0].name
    return arms


class AppRuntime:
    """One ClipperApp as the frontend serves it."""

    def __init__(
        self,
        config: AppConfig,
        models: dict[str, ModelRuntime],
        metrics: AppMetrics,
        seed: int | None,
        on_inherit: Inherit | None = None,
    ) -> None:
        self.metrics = metrics
        self._seed = seed
        self.on_inherit: Inherit | None = on_inherit
        """Told when a new version inherits its predecessor's state (the state backend's
        ``inherited``: a shared one seeds the new arm once for the fleet)."""
        self.config = config
        self.models = models
        self.policy: Policy = make_policy(config.selection, list(models), seed)
        self.arms = arm_keys(models)
        self.cache: PredictionCache = make_cache(config.cache)
        self._learned: Signature | None = None
        self._apply(config)

    @property
    def name(self) -> str:
        return self.config.name

    def update(self, config: AppConfig, models: dict[str, ModelRuntime]) -> None:
        """A new config from the routing table; learned state is kept where it can be."""
        old, self.config, self.models = self.config, config, models
        arms, old_arms = arm_keys(models), self.arms
        self.arms = arms
        if config.selection != old.selection:
            self.policy = make_policy(config.selection, list(models), self._seed)
        else:
            self._renew(config, old_arms)
        if config.cache != old.cache:
            self.cache = make_cache(config.cache)
        self._learned = None  # the models or versions it was learned from may be gone
        self._apply(config)

    def _renew(self, config: AppConfig, old_arms: dict[str, str]) -> None:
        """Start the new arms: a model whose serving version changed is a new arm. By
        default it starts fresh (a fair share, or the prior), not with its
        predecessor's weights; with ``new_version.start: predecessor``, from them,
        bounded to K pseudo-observations. A model new to the app starts fresh. A shared
        backend is told (``on_inherit``; bound 0: fresh), to start the arm there too."""
        arms, models = self.arms, list(self.models)
        renewed = [m for m in models if m in old_arms and old_arms[m] != arms[m]]
        added = [m for m in models if m not in old_arms]
        bound = config.new_version.prior_observations
        if config.new_version.start != "predecessor":
            bound = 0
            self.policy.set_models([m for m in self.policy.models if m not in renewed])
        for model in renewed if bound else []:
            self.policy.inherit(model, bound)
        self.policy.set_models(models)
        if self.on_inherit is not None:
            contexts = self.policy.contexts()
            for model in [*renewed, *added]:
                self.on_inherit(self, contexts, old_arms.get(model, ""), arms[model], bound)

    def _apply(self, config: AppConfig) -> None:
        self.slo_s = config.latency_slo_ms / 1000
        names = list(self.models)
        # With one model every policy selects it with probability 1: skip the draw.
        self.single = Selection((names[0],), {names[0]: 1.0}) if len(names) == 1 else None
        self.configured = Signature.from_spec(config.input) if config.input else None

    @property
    def ready(self) -> bool:
        return any(model.up for model in self.models.values())

    def unavailable(self) -> frozenset[str]:
        """Models with no ready replica, while some other model has one (empty when
        none has: their defaults and errors are then the answer)."""
        down = frozenset(name for name, model in self.models.items() if not model.up)
        return down if len(down) < len(self.models) else frozenset()

    def signature(self) -> Signature | None:
        """The configured input signature, else the first model's, once a replica told it."""
        if self.configured is not None:
            return self.configured
        if self._learned is None:
            self._learned = self._learn()
        return self._learned

    def output_metadata(self) -> list[pb.ModelMetadataResponse.TensorMetadata]:
        """The first model's declared outputs, once a replica told them (else empty)."""
        for model in self.models.values():
            for version, _ in model.versions:
                metadata = version.metadata()
                if metadata is not None and metadata.outputs:
                    return list(metadata.outputs)
        return []

    def input_signatures(self) -> list[Signature]:
        """Every declared input: the configured one, else the first model's declared
        inputs once a replica told them (else empty: inputs are taken as they come)."""
        if self.configured is not None:
            return [self.configured]
        for model in self.models.values():
            for version, _ in model.versions:
                metadata = version.metadata()
                if metadata is not None and metadata.inputs:
                    return [
                        Signature.from_metadata(spec.name, spec.datatype, list(spec.shape))
                        for spec in metadata.inputs
                    ]
        return []

    def output_name(self) -> str:
        outputs = self.output_metadata()
        return str(outputs[0].name) if outputs else "output"

    def _learn(self) -> Signature | None:
        for model in self.models.values():
            for version, _ in model.versions:
                metadata = version.metadata()
                if metadata is not None and metadata.inputs:
                    spec = metadata.inputs[0]
                    return Signature.from_metadata(spec.name, spec.datatype, list(spec.shape))
        return None
