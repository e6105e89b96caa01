"""One scrape for every worker of a pod: their expositions, each labelled ``worker``.

Every series of worker ``i`` gets the label ``worker="i"``, and the families are
merged so each metric is announced once. Nothing is summed here: a worker that
restarts resets its own counters, which Prometheus handles per series
(``rate()`` sees a reset), whereas a sum would go backwards. Pod totals are a
``sum without (worker)`` in PromQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

WORKER_LABEL = "worker"


def merge_expositions(expositions: Mapping[int, bytes]) -> bytes:
    """The text exposition of every worker's metrics, by worker index."""
    families: dict[str, Metric] = {}
    for index, text in sorted(expositions.items()):
        try:
            parsed = list(text_string_to_metric_families(text.decode()))
        except ValueError as exc:  # a reply cut off: leave that worker out, say so
            log.warning("worker %d's metrics could not be parsed: %s", index, exc)
            continue
        for family in parsed:
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            merged.samples += [
                sample._replace(labels={**sample.labels, WORKER_LABEL: str(index)})
                for sample in family.samples
            ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families.values()))
    return generate_latest(registry)


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families
